using Microsoft.ML;
using Microsoft.ML.Data;
using MLNetQuant.Configuration;
using MLNetQuant.Samples.Shared;
using MLNetQuant.Training;
using MLNetQuant.UnitTests.Training;
using static TorchSharp.torch;

namespace MLNetQuant.UnitTests.Algorithms;

/// <summary>Every simple overload works with its defaults on the user CNN (two convs with 12 and 24 channels,
/// BN on the second, dropout before the classifier) on a Fashion-MNIST slice: it trains or calibrates, exports, and
/// keeps the accuracy of the float model it starts from. What cannot be exported is refused before training.</summary>
[TestClass]
public sealed class SimpleOverloadDefaultsTests
{
    private static readonly long[] Shape = { 1, 28, 28 };
    private static (MLContext Ml, nn.Module<Tensor, Tensor> Model, IDataView Train, IDataView Test, double FloatAccuracy)? _pretrained;

    // Conv(1,12,3,p1)-ReLU-MaxPool2-Conv(12,24,3,p1)-BN-ReLU-MaxPool2-Flatten-Linear(1176,64)-ReLU-Dropout-Linear(64,10).
    // Weighted layers: 0, 3, 8, 11.
    private static nn.Module<Tensor, Tensor> UserCnn() => nn.Sequential(
        nn.Conv2d(1, 12, 3, padding: 1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(12, 24, 3, padding: 1), nn.BatchNorm2d(24), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(1176, 64), nn.ReLU(), nn.Dropout(0.2), nn.Linear(64, 10));

    // One float model for every test: Fit leaves the module it is given as it was (FitIsolationTests), so sharing it
    // is safe and saves a pre-training per test.
    private static (MLContext Ml, nn.Module<Tensor, Tensor> Model, IDataView Train, IDataView Test, double FloatAccuracy) Pretrained()
    {
        if (_pretrained is { } done) return done;
        var ml = new MLContext(7);
        var train = FashionData.Load(ml, train: true, limit: 2000).Data;
        var test = FashionData.Load(ml, train: false, limit: 1000).Data;
        random.manual_seed(7);
        var model = UserCnn();
        var floatOptions = new FloatTrainingOptions { Model = model, InputShape = Shape, Epochs = 3, LearningRate = 0.01, Device = QuantDevice.Cpu };
        var run = QuantizationRunner.Run(ml, floatOptions, train);
        var accuracy = QuantizationRunner.Evaluate(ml, run, test, floatOptions).Accuracy;
        Console.WriteLine($"float: {accuracy:P1}");
        Assert.IsGreaterThan(0.7, accuracy, "the float model the overloads start from");
        _pretrained = (ml, model, train, test, accuracy);
        return _pretrained.Value;
    }

    private static double Accuracy(MLContext ml, ITransformer model, IDataView test)
    {
        var scored = model.Transform(test);
        var labels = scored.GetColumn<uint>("Label").ToArray();
        var scores = scored.GetColumn<float[]>("Score").ToArray();
        return labels.Zip(scores).Count(p => Scores.ArgMax(p.Second) == p.First) / (double)labels.Length;
    }

    [TestMethod]
    [DataRow("Qat")]
    [DataRow("Lsq")]
    [DataRow("DoReFa")]
    [DataRow("Bnn")]
    [DataRow("Observer")]
    [DataRow("Naive")]
    public void SimpleOverload_WithItsDefaults_TrainsExportsAndKeepsAccuracy(string algorithm)
    {
        var (ml, model, train, test, floatAccuracy) = Pretrained();
        var q = ml.Quantization();
        QuantizationEstimator estimator = algorithm switch
        {
            "Qat" => q.Qat(model, Shape),
            "Lsq" => q.Lsq(model, Shape),
            "DoReFa" => q.DoReFa(model, Shape),
            "Bnn" => q.Bnn(model, Shape, epochs: 2),
            "Observer" => q.Observer(model, Shape),
            _ => q.Naive(model, Shape),
        };
        using var fitted = estimator.Fit(train);
        var accuracy = Accuracy(ml, fitted, test);
        Console.WriteLine($"{algorithm} defaults: {accuracy:P1} (float {floatAccuracy:P1})");
        // BNN binarizes the two middle layers, so it is held to less; the others stay near float.
        var allowedDrop = algorithm == "Bnn" ? 0.15 : 0.03;
        Assert.IsGreaterThanOrEqualTo(floatAccuracy - allowedDrop, accuracy, $"{algorithm} with its defaults");
        if (algorithm == "Bnn")
        {
            // The usual recipe (and NNI's example): the first and last weighted layers stay at 8 bits.
            var weightBits = fitted.Report.Tensors.Where(t => t.Tensor == QuantType.Weight).ToDictionary(t => t.Layer, t => t.Bits);
            Assert.AreEqual(8, weightBits["0"], "first conv");
            Assert.AreEqual(1, weightBits["3"], "second conv is binarized");
            Assert.AreEqual(1, weightBits["8"], "hidden linear is binarized");
            Assert.AreEqual(8, weightBits["11"], "classifier");
        }
    }

    [TestMethod]
    public void DoReFa8BitWeights_AreRefusedBeforeTraining()
    {
        var ml = new MLContext(1);
        var reports = 0;
        var options = new DoReFaOptions
        {
            ModelFactory = UserCnn, InputShape = Shape, Epochs = 1, LogEverySteps = 1,
            Config = { new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 8, OpTypes = { "default" } } },
            Progress = new CallbackProgress(_ => reports++),
        };
        var e = Assert.ThrowsExactly<QuantConfigException>(() => ml.Quantization().DoReFa(options).Fit(FashionData.Load(ml, train: true, limit: 128).Data));
        StringAssert.Contains(e.Message, "config[0].quant_bits");
        StringAssert.Contains(e.Message, "use at most 7 bits");
        Assert.AreEqual(0, reports, "no training step ran");
    }

    [TestMethod]
    public void WeightsWiderThan8Bits_AreRefusedBeforeTraining()
    {
        var ml = new MLContext(1);
        var options = new QatOptions
        {
            ModelFactory = UserCnn, InputShape = Shape,
            Config = { new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 12, OpTypes = { "default" } } },
        };
        var e = Assert.ThrowsExactly<QuantConfigException>(() => ml.Quantization().Qat(options).Fit(FashionData.Load(ml, train: true, limit: 128).Data));
        StringAssert.Contains(e.Message, "config[0].quant_bits");
    }

    [TestMethod]
    public void BnnActivationsWiderThan1Bit_AreRefusedBeforeTraining()
    {
        var ml = new MLContext(1);
        var options = new BnnOptions
        {
            ModelFactory = TestData.TinyHardtanhNet, InputShape = TestData.InputShape,
            Config =
            {
                new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 1, OpTypes = { "default" } },
                new QuantConfig { QuantTypes = { QuantType.Output }, QuantBits = 4, OpTypes = { "Hardtanh" } },
            },
        };
        var e = Assert.ThrowsExactly<QuantConfigException>(() => ml.Quantization().Bnn(options).Fit(TestData.Quadrants(ml, 64)));
        StringAssert.Contains(e.Message, "config[1].quant_bits");
    }

}
