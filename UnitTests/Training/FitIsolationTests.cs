using Microsoft.ML;
using MLNetQuant.Training;
using MLNetQuant.UnitTests.Training;
using static TorchSharp.torch;

namespace MLNetQuant.UnitTests.Training;

/// <summary>Fit trains a copy: the module given in the options keeps every parameter and buffer (BatchNorm running
/// statistics and counters included), also when Fit throws; fitting one estimator twice, or three estimators with
/// the same MLContext seed, gives byte-identical ONNX models.</summary>
[TestClass]
public sealed class FitIsolationTests
{
    private static nn.Module<Tensor, Tensor> SeededModel()
    {
        random.manual_seed(21);
        return TestData.TinyCnn();
    }

    private static Dictionary<string, float[]> State(nn.Module module) =>
        module.state_dict().ToDictionary(p => p.Key, p => TestData.Values(p.Value));

    private static void AssertSameState(Dictionary<string, float[]> expected, nn.Module module)
    {
        var actual = State(module);
        CollectionAssert.AreEquivalent(expected.Keys.ToArray(), actual.Keys.ToArray());
        foreach (var (name, values) in expected)
            CollectionAssert.AreEqual(values, actual[name], $"'{name}' changed");
    }

    [TestMethod]
    public void Fit_LeavesTheCallersModuleAsItWas_ParametersBuffersAndMode()
    {
        var ml = new MLContext(3);
        var model = SeededModel();
        model.train();
        var before = State(model);
        Assert.IsTrue(before.Keys.Any(k => k.EndsWith("running_mean")) && before.Keys.Any(k => k.EndsWith("num_batches_tracked")),
            "the check must cover BatchNorm buffers");
        using var fitted = ml.Quantization().Qat(model, TestData.InputShape, epochs: 2, learningRate: 0.05).Fit(TestData.Quadrants(ml, 256));
        AssertSameState(before, model);
        Assert.IsTrue(model.training, "the module's training flag is restored");
        Assert.IsTrue(model.parameters().All(p => p.grad is null), "no gradients are left on the caller's parameters");
    }

    [TestMethod]
    public void Fit_ThatThrows_LeavesTheCallersModuleAsItWas()
    {
        var ml = new MLContext(3);
        var model = SeededModel();
        var before = State(model);
        using var cancel = new CancellationTokenSource();
        var options = new QatOptions
        {
            Model = model, InputShape = TestData.InputShape, Epochs = 3, LearningRate = 0.05, LogEverySteps = 1,
            CancellationToken = cancel.Token,
            // Cancel after a few optimizer steps, i.e. once the weights have really moved.
            Progress = new CallbackProgress(p => { if (p.Step >= 3) cancel.Cancel(); }),
        };
        Assert.ThrowsExactly<OperationCanceledException>(() => ml.Quantization().Qat(options).Fit(TestData.Quadrants(ml, 512)));
        AssertSameState(before, model);
    }

    [TestMethod]
    public void FittingOneEstimatorTwice_GivesTheSameModel()
    {
        var ml = new MLContext(4);
        var data = TestData.Quadrants(ml, 256);
        var estimator = ml.Quantization().Qat(SeededModel(), TestData.InputShape, epochs: 2, learningRate: 0.05);
        using var first = estimator.Fit(data);
        using var second = estimator.Fit(data);
        CollectionAssert.AreEqual(first.GetOnnxBytes(), second.GetOnnxBytes());
    }

    [TestMethod]
    public void ThreeSeededQatRuns_GiveByteIdenticalOnnx()
    {
        var models = Enumerable.Range(0, 3).Select(_ =>
        {
            var ml = new MLContext(seed: 5);
            var options = new QatOptions
            {
                ModelFactory = TestData.TinyCnn, InputShape = TestData.InputShape, Epochs = 2, LearningRate = 0.05,
                Device = QuantDevice.Cpu,
            };
            using var fitted = ml.Quantization().Qat(options).Fit(TestData.Quadrants(ml, 384));
            return fitted.GetOnnxBytes();
        }).ToList();
        CollectionAssert.AreEqual(models[0], models[1], "run 2 differs from run 1");
        CollectionAssert.AreEqual(models[0], models[2], "run 3 differs from run 1");

        // And the seed matters: another seed trains another model (so the comparison above could fail).
        var other = new MLContext(seed: 6);
        using var different = other.Quantization().Qat(new QatOptions
        {
            ModelFactory = TestData.TinyCnn, InputShape = TestData.InputShape, Epochs = 2, LearningRate = 0.05, Device = QuantDevice.Cpu,
        }).Fit(TestData.Quadrants(other, 384));
        CollectionAssert.AreNotEqual(models[0], different.GetOnnxBytes());
    }

}
