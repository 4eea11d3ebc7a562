using Microsoft.ML;
using Microsoft.ML.Data;
using MLNetQuant.Configuration;
using MLNetQuant.Samples.Shared;
using MLNetQuant.Training;

namespace MLNetQuant.UnitTests.Export;

/// <summary>Issue 4's "done when", on small data: each of the six estimators fits the reference CNN on a Fashion-MNIST
/// slice, its .zip is loaded and scored by a process without TorchSharp or MLNetQuant, and that accuracy equals the
/// accuracy the training side measured on the same rows.</summary>
[TestClass]
public sealed class SixEstimatorsProductionTests
{
    private static readonly long[] Shape = { 1, 28, 28 };

    public TestContext TestContext { get; set; } = null!;

    public static IEnumerable<object[]> Estimators()
    {
        QuantConfig W(int bits) => new() { QuantTypes = { QuantType.Weight, QuantType.Input }, QuantBits = bits, OpTypes = { "Conv2d", "Linear" } };
        yield return new object[] { "Qat", (Func<QuantizationCatalog, QuantizationEstimator>)(q => q.Qat(new QatOptions { Model = Trained(), InputShape = Shape, Device = QuantDevice.Cpu, LearningRate = 0.001, Config = { W(8) } })) };
        yield return new object[] { "Lsq", (Func<QuantizationCatalog, QuantizationEstimator>)(q => q.Lsq(new LsqOptions { Model = Trained(), InputShape = Shape, Device = QuantDevice.Cpu, LearningRate = 0.001, Config = { W(4) } })) };
        yield return new object[] { "DoReFa", (Func<QuantizationCatalog, QuantizationEstimator>)(q => q.DoReFa(new DoReFaOptions
        {
            Model = Trained(), InputShape = Shape, Device = QuantDevice.Cpu, LearningRate = 0.001,
            Config = { new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 4, OpTypes = { "Conv2d", "Linear" } } },
        })) };
        yield return new object[] { "Bnn", (Func<QuantizationCatalog, QuantizationEstimator>)(q => q.Bnn(new BnnOptions
        {
            ModelFactory = FashionNets.HardtanhCnnWithLinearBatchNorm, InputShape = Shape, Device = QuantDevice.Cpu, Optimizer = QuantOptimizer.Adam, LearningRate = 0.001,
            Config =
            {
                new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 1, OpNames = { "4", "9" } },
                new QuantConfig { QuantTypes = { QuantType.Output }, QuantBits = 1, OpNames = { "2", "6" } },
            },
        })) };
        yield return new object[] { "Observer", (Func<QuantizationCatalog, QuantizationEstimator>)(q => q.Observer(Trained(), Shape, new[] { W(8) })) };
        yield return new object[] { "Naive", (Func<QuantizationCatalog, QuantizationEstimator>)(q => q.Naive(Trained(), Shape)) };
    }

    private static string? s_weights;

    // One float model, trained once, that the fine-tuning and post-training estimators start from.
    private static TorchSharp.torch.nn.Module<TorchSharp.torch.Tensor, TorchSharp.torch.Tensor> Trained()
    {
        if (s_weights is null)
        {
            var ml = new MLContext(seed: 1);
            var (train, _, _) = FashionData.Load(ml, train: true, 1500);
            var run = QuantizationRunner.Run(ml, new FloatTrainingOptions
            {
                ModelFactory = FashionNets.Cnn, InputShape = Shape, Device = QuantDevice.Cpu, Epochs = 2, LearningRate = 0.01,
            }, train);
            s_weights = Path.Combine(Path.GetTempPath(), $"mlnetquant-six-{Environment.ProcessId}.bin");
            run.Network.Model.save(s_weights);
        }
        var model = FashionNets.Cnn();
        model.load(s_weights);
        return model;
    }

    [TestMethod]
    [DynamicData(nameof(Estimators))]
    public void FitsSavesAndPredictsInAProcessWithoutTorchSharp(string name, Func<QuantizationCatalog, QuantizationEstimator> create)
    {
        var ml = new MLContext(seed: 2);
        var (train, _, _) = FashionData.Load(ml, train: true, 1500);
        var (test, testRows, _) = FashionData.Load(ml, train: false, 300);
        using var model = create(ml.Quantization()).Fit(train);
        var labels = ml.Data.CreateEnumerable<FashionRow>(test, reuseRowObject: false).Select(r => r.Label).ToArray();
        var trainingSide = model.Transform(test).GetColumn<uint>("PredictedLabel").Select(k => (int)k - 1).ToArray();
        var expectedAccuracy = trainingSide.Zip(labels).Count(p => p.First == p.Second) / (double)testRows;

        var zip = Path.Combine(Path.GetTempPath(), $"mlnetquant-six-{Guid.NewGuid():N}.zip");
        try
        {
            ml.Model.Save(model, test.Schema, zip);
            var features = ml.Data.CreateEnumerable<FashionRow>(test, false).SelectMany(r => r.Features).ToArray();
            var (values, keys, _) = ProductionProcess.Score(zip, features, 784);
            Assert.IsNotNull(keys, $"{name}: the loaded model has a key-typed PredictedLabel");
            var production = keys.Select(k => (int)k - 1).ToArray();
            CollectionAssert.AreEqual(production, Enumerable.Range(0, testRows).Select(i => Scores.ArgMax(values.AsSpan(i * 10, 10))).ToArray(),
                $"{name}: PredictedLabel is the arg-max of Score in the production process");
            var accuracy = production.Zip(labels).Count(p => p.First == p.Second) / (double)testRows;
            TestContext.WriteLine($"{name}: training side {expectedAccuracy:P1}, production process {accuracy:P1}; report {QuantizationReport.FromZip(zip).Tensors.Count} tensors");
            Assert.AreEqual(expectedAccuracy, accuracy, 1e-9, $"{name}: the production process predicts what the training side did");
            Assert.IsGreaterThan(0.5, accuracy, $"{name}: a useful model");
        }
        finally
        {
            File.Delete(zip);
        }
    }
}
