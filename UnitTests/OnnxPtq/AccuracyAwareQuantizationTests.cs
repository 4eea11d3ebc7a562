using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.Transforms;
using MLNetQuant.Onnx;
using MLNetQuant.OnnxPtq;
using MLNetQuant.Samples.Shared;
using MLNetQuant.UnitTests.Graph;
using Onnx;

namespace MLNetQuant.UnitTests.OnnxPtq;

/// <summary>Accuracy-aware post-training quantization: cross-layer equalization, bias correction, AdaRound, low weight
/// bit widths and the accuracy-tolerance search.</summary>
[TestClass]
public sealed class AccuracyAwareQuantizationTests
{
    private const int Channels = 4, Side = 8, FeatureCount = Channels * Side * Side, Classes = 3, Rows = 128;

    public TestContext TestContext { get; set; } = null!;

    private sealed class Row
    {
        [VectorType(FeatureCount)]
        public float[] Features { get; set; } = Array.Empty<float>();
    }

    // Conv 4→8 (3×3) → Relu → depthwise Conv 8 (3×3) → ReLU6 (Clip 0…6, or Relu) → Conv 8→4 (1×1) → Relu →
    // GlobalAveragePool → Flatten → Gemm 4→3. conv_a's output channels spread over 2⁻⁴…2³ in scale and conv_b's the
    // other way round (a MobileNet's depthwise layers look like this): per-tensor weight grids waste their levels on the
    // widest channel.
    private static byte[] ImbalancedChain(bool relu6)
    {
        var onnx = new OnnxGraphBuilder();
        var x = onnx.Input("x", Channels, Side, Side);
        string Conv(string name, string input, int outputs, int perGroupInputs, int kernel, int groups, int seed, Func<int, float> channelScale)
        {
            var weight = ZooModels.Noise(outputs * perGroupInputs * kernel * kernel, seed);
            var perChannel = weight.Length / outputs;
            for (var i = 0; i < weight.Length; i++) weight[i] *= channelScale(i / perChannel) * 0.5f;
            var bias = ZooModels.Noise(outputs, seed + 1).Select(b => 0.1f * b).ToArray();
            return onnx.Node("Conv", name, new[] { input, onnx.Initializer($"{name}.w", weight, outputs, perGroupInputs, kernel, kernel), onnx.Initializer($"{name}.b", bias, outputs) },
                new Dictionary<string, object> { ["pads"] = Enumerable.Repeat((long)(kernel / 2), 4).ToArray(), ["group"] = (long)groups });
        }
        var a = onnx.Node("Relu", "relu_a", new[] { Conv("conv_a", x, 8, Channels, 3, 1, 11, c => MathF.Pow(2, c - 4)) });
        var b = Conv("conv_b", a, 8, 1, 3, 8, 21, c => MathF.Pow(2, 3 - c));
        b = relu6
            ? onnx.Node("Clip", "relu6_b", new[] { b, onnx.Initializer("zero", new[] { 0f }), onnx.Initializer("six", new[] { 6f }) })
            : onnx.Node("Relu", "relu_b", new[] { b });
        var c = onnx.Node("Relu", "relu_c", new[] { Conv("conv_c", b, Channels, 8, 1, 1, 31, _ => 1f) });
        var pooled = onnx.Node("Flatten", "flatten", new[] { onnx.Node("GlobalAveragePool", "pool", new[] { c }) });
        var gemm = onnx.Node("Gemm", "fc", new[] { pooled, onnx.Initializer("fc.w", ZooModels.Noise(Classes * Channels, 41), Classes, Channels),
            onnx.Initializer("fc.b", new float[Classes], Classes) }, new Dictionary<string, object> { ["transB"] = 1L });
        onnx.Output("y", gemm, OnnxGraphBuilder.ElementType.Float, Classes);
        return onnx.Build(13, new Dictionary<string, string>());
    }

    private static Row[] Data(int rows, int seed, float mean = 0.5f)
    {
        var noise = ZooModels.Noise(rows * FeatureCount, seed);
        return Enumerable.Range(0, rows).Select(r => new Row { Features = noise.AsSpan(r * FeatureCount, FeatureCount).ToArray().Select(v => v + mean).ToArray() }).ToArray();
    }

    private static float[] Run(byte[] model, Row[] rows)
    {
        using var input = OrtValue.CreateTensorValueFromMemory(rows.SelectMany(r => r.Features).ToArray(), new long[] { rows.Length, Channels, Side, Side });
        return ZooModels.Run(model, new[] { ("x", input) });
    }

    private static double RelativeError(float[] exact, float[] actual) =>
        exact.Zip(actual, (e, a) => (double)(e - a) * (e - a)).Sum() / exact.Sum(e => (double)e * e);

    private static float[] Scores(MLContext ml, ITransformer model, Row[] rows) =>
        model.Transform(ml.Data.LoadFromEnumerable(rows)).GetColumn<float[]>("Score").SelectMany(s => s).ToArray();

    [TestMethod]
    public void CrossLayerEqualization_KeepsTheFloatFunction_AndEqualizesEachPairsChannelRanges()
    {
        var original = ImbalancedChain(relu6: false);
        var model = ModelProto.Parser.ParseFrom(original);
        var result = CrossLayerEqualization.Apply(model, new HashSet<string>());
        Assert.AreEqual(2, result.Pairs, "conv_a → conv_b and conv_b → conv_c (the Gemm behind Flatten is not a pair)");
        Assert.AreEqual(0, result.Relu6Replaced);
        var rows = Data(16, 3);
        var before = Run(original, rows);
        var after = Run(Google.Protobuf.MessageExtensions.ToByteArray(model), rows);
        Assert.IsLessThan(1e-10, RelativeError(before, after), "ReLU is positively homogeneous: the float function is unchanged");

        // After the sweeps, each conv_a output channel's range equals the conv_b channel it feeds.
        var weights = model.Graph.Initializer.ToDictionary(t => t.Name, t => OnnxGraphBuilder.Floats(t));
        var aRange = Enumerable.Range(0, 8).Select(c => weights["conv_a.w"].Skip(c * 36).Take(36).Max(Math.Abs)).ToArray();
        var bRange = Enumerable.Range(0, 8).Select(c => weights["conv_b.w"].Skip(c * 9).Take(9).Max(Math.Abs)).ToArray();
        for (var c = 0; c < 8; c++)
            Assert.AreEqual(1, aRange[c] / bRange[c], 0.05, $"channel {c}: conv_a's output range equals conv_b's input range after equalization");
        var spread = (double)aRange.Max() / aRange.Min();
        TestContext.WriteLine($"conv_a channel ranges after CLE: max/min {spread:F2} (before: 128)");
        Assert.IsLessThan(16, spread, "the 128× spread of conv_a's channel ranges shrinks");
    }

    [TestMethod]
    public void CrossLayerEqualization_ReplacesReLU6_AndMakesPerTensorWeightsWork()
    {
        var float32 = ImbalancedChain(relu6: true);
        var ml = new MLContext(seed: 1);
        var calibration = ml.Data.LoadFromEnumerable(Data(Rows, 5));
        var held = Data(64, 6);
        var exact = Run(float32, held);
        double Error(bool cle)
        {
            var options = new OnnxQuantizationOptions { ModelBytes = float32, PerChannelWeights = false, CrossLayerEqualization = cle };
            using var model = ml.Quantization().Observer(options).Fit(calibration);
            if (cle)
            {
                Assert.AreEqual("Observer + CLE (ReLU6 → ReLU)", model.Report.Algorithm);
                Assert.IsFalse(ModelProto.Parser.ParseFrom(model.GetOnnxBytes()).Graph.Node.Any(n => n.OpType == "Clip"), "the ReLU6 between equalized layers is a Relu");
            }
            return RelativeError(exact, Scores(ml, model, held));
        }
        var (plain, equalized) = (Error(false), Error(true));
        TestContext.WriteLine($"per-tensor int8 weights, relative squared output error: plain {plain:G4}, CLE {equalized:G4}");
        Assert.IsLessThan(plain / 4, equalized, "equalization cuts the per-tensor error at least fourfold");
    }

    [TestMethod]
    public void BiasCorrection_RemovesTheMeanOutputShiftOfTheWeightError()
    {
        // One convolution with 3-bit weights on inputs of mean 0.5: rounding shifts each output channel's mean by
        // Σ (Ŵ − W)·E[x]; bias correction subtracts exactly that, for a Conv without a bias too (it gets one).
        var onnx = new OnnxGraphBuilder();
        var x = onnx.Input("x", Channels, Side, Side);
        var conv = onnx.Node("Conv", "conv", new[] { x, onnx.Initializer("conv.w", ZooModels.Noise(6 * Channels * 9, 13), 6, Channels, 3, 3) },
            new Dictionary<string, object> { ["pads"] = new long[] { 1, 1, 1, 1 } });
        onnx.Output("y", conv, OnnxGraphBuilder.ElementType.Float, 6, Side, Side);
        var float32 = onnx.Build(13, new Dictionary<string, string>());
        var ml = new MLContext(seed: 1);
        var rows = Data(Rows, 7);
        var calibration = ml.Data.LoadFromEnumerable(rows);
        var exact = Run(float32, rows);
        double MeanShift(bool correct)
        {
            var options = new OnnxQuantizationOptions { ModelBytes = float32, WeightBits = 3, BiasCorrection = correct };
            using var model = ml.Quantization().Observer(options).Fit(calibration);
            Assert.IsTrue(model.Report.Tensors.Where(t => t.Tensor == QuantType.Weight).All(t => t.Bits == 3), "the report records the 3-bit weights");
            var actual = Scores(ml, model, rows);
            var perChannel = Side * Side;
            var shift = 0.0;
            for (var c = 0; c < 6; c++)
            {
                double sum = 0;
                for (var r = 0; r < Rows; r++)
                    for (var p = 0; p < perChannel; p++)
                    {
                        var i = (r * 6 + c) * perChannel + p;
                        sum += actual[i] - exact[i];
                    }
                shift += Math.Abs(sum / (Rows * perChannel));
            }
            return shift / 6;
        }
        var (plain, corrected) = (MeanShift(false), MeanShift(true));
        TestContext.WriteLine($"mean |output shift| per channel: plain {plain:G4}, bias-corrected {corrected:G4}");
        Assert.IsLessThan(plain / 5, corrected, "bias correction removes the mean shift the weight rounding causes");
    }

    [TestMethod]
    public void AdaRound_LowersTheOutputErrorOfNearestRounding_StaysOnTheGrid_AndIsDeterministic()
    {
        var float32 = ImbalancedChain(relu6: false);
        var ml = new MLContext(seed: 1);
        var calibration = ml.Data.LoadFromEnumerable(Data(Rows, 9));
        var held = Data(64, 10);
        var exact = Run(float32, held);
        (double Error, byte[] Onnx) Fit(AdaRoundOptions? adaRound)
        {
            var options = new OnnxQuantizationOptions { ModelBytes = float32, WeightBits = 4, AdaRound = adaRound, ErrorReportRows = 0 };
            using var model = ml.Quantization().Observer(options).Fit(calibration);
            var scores = Scores(ml, model, held);
            // Packed 4-bit weights load through ML.NET's .zip like any model.
            CollectionAssert.AreEqual(scores, ZooModels.ScoresAfterReload(ml, model, calibration.Schema, held));
            return (RelativeError(exact, scores), model.GetOnnxBytes());
        }
        var nearest = Fit(null);
        var learned = Fit(new AdaRoundOptions { Iterations = 500, Rows = 64, LearningRate = 0.01 });
        var again = Fit(new AdaRoundOptions { Iterations = 500, Rows = 64, LearningRate = 0.01 });
        TestContext.WriteLine($"W4 per-channel, held-out relative squared error: nearest {nearest.Error:G4}, AdaRound {learned.Error:G4}");
        Assert.IsLessThan(nearest.Error, learned.Error, "learned rounding beats rounding to nearest on held-out rows");
        CollectionAssert.AreEqual(learned.Onnx, again.Onnx, "a seeded AdaRound gives the same model twice");
        var graph = ModelProto.Parser.ParseFrom(learned.Onnx).Graph;
        var packed = graph.Initializer.Where(t => t.Name.EndsWith(".weight_int4_packed", StringComparison.Ordinal)).ToList();
        Assert.HasCount(4, packed, "the four 4-bit weights are stored packed");
        Assert.AreEqual((8 * 4 * 9 + 8 * 9 + 4 * 8 + 3 * 4 + 1) / 2, packed.Sum(t => t.RawData.Length), 2, "two codes per byte");
    }

    [TestMethod]
    public void WeightSizeBudget_PutsTheLeastSensitiveLayersAt4Bits_UntilTheWeightsFit()
    {
        var float32 = ImbalancedChain(relu6: false);
        var ml = new MLContext(seed: 1);
        var calibration = ml.Data.LoadFromEnumerable(Data(Rows, 14));
        var held = Data(64, 15);
        var exact = Run(float32, held);
        (double Error, int Bytes, QuantizationReport Report) Fit(int bits, double? budget)
        {
            var options = new OnnxQuantizationOptions { ModelBytes = float32, WeightBits = bits, WeightSizeBudget = budget, SensitivityRows = 64 };
            using var model = ml.Quantization().Observer(options).Fit(calibration);
            // The bytes the weights' integers take (int8, or packed int4).
            var stored = ModelProto.Parser.ParseFrom(model.GetOnnxBytes()).Graph.Initializer
                .Where(t => t.Name.EndsWith(".weight_quantized", StringComparison.Ordinal) || t.Name.EndsWith(".weight_int4_packed", StringComparison.Ordinal))
                .Sum(t => t.RawData.Length);
            return (RelativeError(exact, Scores(ml, model, held)), stored, model.Report);
        }
        var (all8, all4, mixed) = (Fit(8, null), Fit(4, null), Fit(8, 0.2));
        var choice = mixed.Report.MixedPrecision!;
        TestContext.WriteLine($"4-bit: {string.Join(", ", choice.FourBitLayers)}; share {choice.WeightShare:P1}; error int8 {all8.Error:G3}, int4 {all4.Error:G3}, mixed {mixed.Error:G3}; " +
            $"bytes {all8.Bytes}, {all4.Bytes}, {mixed.Bytes}");
        Assert.IsLessThanOrEqualTo(0.2, choice.WeightShare, "the weights fit the budget");
        Assert.IsTrue(choice.FourBitLayers.Count is > 0 and < 4, "some layers, not all, go to 4 bits");
        var bits = mixed.Report.Tensors.Where(t => t.Tensor == QuantType.Weight).ToDictionary(t => t.Layer, t => t.Bits);
        Assert.IsTrue(bits.All(b => b.Value == (choice.FourBitLayers.Contains(b.Key) ? 4 : 8)), "the report's widths are the chosen ones");
        Assert.IsLessThan(all8.Bytes, mixed.Bytes, "4-bit weights are stored packed: their integers take fewer bytes");
        Assert.AreEqual(all8.Bytes * choice.WeightShare / 0.25, mixed.Bytes, 2, "the share the report states is what is stored");
        Assert.IsLessThan(all4.Error, mixed.Error, "keeping the most sensitive layers at 8 bits beats 4 bits everywhere");
        Assert.AreEqual("Observer + mixed precision", mixed.Report.Algorithm);
        Assert.AreEqual("WeightSizeBudget",
            Assert.Throws<ArgumentOutOfRangeException>(() => ml.Quantization().Observer(new OnnxQuantizationOptions { ModelBytes = float32, WeightSizeBudget = 0.1 })).ParamName);
    }

    [TestMethod]
    public void ToleranceSearch_LeavesTheFewestLayersFloat_ThatMeetTheTolerance_AndKeepsTheTrail()
    {
        var ml = new MLContext(seed: 1);
        var (train, _, _) = FashionData.Load(ml, train: true, 300);
        var (test, _, _) = FashionData.Load(ml, train: false, 600);
        var keys = ml.Transforms.Conversion.MapValueToKey("LabelKey", "Label", keyOrdinality: ValueToKeyMappingEstimator.KeyOrdinality.ByValue).Fit(train);
        train = keys.Transform(train);
        var validation = keys.Transform(test);
        // 3-bit per-tensor weights ruin the CNN: some layers must stay float to come within 2 points.
        var options = new OnnxQuantizationOptions
        {
            ModelPath = ZooModels.Shared("fashion_cnn_fp32.onnx"), PerChannelWeights = false, WeightBits = 3, CalibrationRows = 200,
            PredictedLabelColumnName = "PredictedLabel", LabelColumnName = "LabelKey",
            AccuracyTolerance = AccuracyTolerance.Absolute(0.02), ValidationData = validation, Metric = QuantizationMetric.MulticlassAccuracy("LabelKey"),
            SensitivityRows = 128,
        };
        using var model = ml.Quantization().Observer(options).Fit(train);
        var search = model.Report.ToleranceSearch!;
        foreach (var trial in search.Trials)
            TestContext.WriteLine($"trial {trial.Trial}: [{string.Join(", ", trial.FloatLayers)}] → {trial.Metric:F4} {(trial.Met ? "met" : "")}");
        Assert.AreEqual(0, search.Trials[0].FloatLayers.Count, "the first trial is the fully quantized model");
        Assert.IsFalse(search.Trials[0].Met, "3-bit weights miss a 2-point tolerance");
        Assert.IsTrue(search.Met);
        Assert.IsLessThanOrEqualTo(20, search.Trials.Count);
        Assert.IsTrue(search.FloatLayers.Count > 0 && search.FloatLayers.Count < search.Sensitivities.Count);
        Assert.IsTrue(search.Trials.Any(t => !t.Met && t.FloatLayers.Count == search.FloatLayers.Count - 1),
            "one layer fewer in float was tried and missed: the kept set is the smallest");
        CollectionAssert.AreEquivalent(search.Sensitivities.Take(search.FloatLayers.Count).Select(s => s.Node).ToList(), search.FloatLayers.ToList(),
            "the most sensitive layers are the ones left float");

        // The kept model is the one fitted, and what the report says of it holds on the validation data.
        var weightLayers = model.Report.Tensors.Where(t => t.Tensor == QuantType.Weight).Select(t => t.Layer).ToList();
        Assert.IsFalse(weightLayers.Intersect(search.FloatLayers).Any(), "float layers have no quantized weight");
        var accuracy = ml.MulticlassClassification.Evaluate(model.Transform(validation), "LabelKey", "Score", "PredictedLabel").MicroAccuracy;
        Assert.AreEqual(search.QuantizedMetric, accuracy, 1e-9);
        Assert.IsGreaterThanOrEqualTo(search.Limit - 1e-9, accuracy);
        var reread = QuantizationReport.FromOnnx(model.GetOnnxBytes()).ToleranceSearch!;
        Assert.AreEqual(search.Trials.Count, reread.Trials.Count, "the trail is saved in the model");
    }

    [TestMethod]
    public void ToleranceSearch_OutOfTrials_KeepsTheBestModel_AndSaysItMissed()
    {
        var ml = new MLContext(seed: 1);
        var float32 = ImbalancedChain(relu6: false);
        var rows = Data(Rows, 12);
        var data = ml.Data.LoadFromEnumerable(rows);
        var exact = Run(float32, rows);
        // The custom metric: relative squared error against the float outputs (lower is better); a zero tolerance cannot be met.
        var metric = QuantizationMetric.Custom("relative error", higherIsBetter: false,
            scored => RelativeError(exact, scored.GetColumn<float[]>("Score").SelectMany(s => s).ToArray()));
        var options = new OnnxQuantizationOptions
        {
            ModelBytes = float32, WeightBits = 2, AccuracyTolerance = AccuracyTolerance.Relative(0), ValidationData = data, Metric = metric, MaxTrials = 3,
        };
        using var model = ml.Quantization().Observer(options).Fit(data);
        var search = model.Report.ToleranceSearch!;
        Assert.IsFalse(search.Met);
        Assert.AreEqual(3, search.Trials.Count);
        Assert.AreEqual(search.Trials.Min(t => t.Metric), search.QuantizedMetric, "the best trial is kept");
        Assert.AreEqual(0.0, search.FloatMetric, 1e-12, "the float model's own error is 0");
    }

    [TestMethod]
    public void TorchSharpNet_ExportedFloat_TakesCrossLayerEqualizationAndBiasCorrection()
    {
        // The depthwise-separable Fashion CNN (ReLU6, BatchNorm) as a TorchSharp module, untrained but seeded.
        TorchSharp.torch.random.manual_seed(3);
        using var net = FashionNets.DepthwiseSeparableCnn();
        var before = net.state_dict().ToDictionary(p => p.Key, p => p.Value.clone());
        var float32 = MLNetQuant.Export.OnnxExport.ToFloatOnnx(net, new long[] { 1, 28, 28 });
        foreach (var (name, value) in net.state_dict())
            Assert.IsTrue(value.allclose(before[name], rtol: 0, atol: 0), $"{name}: the export leaves the module as it was");
        var graph = ModelProto.Parser.ParseFrom(float32).Graph;
        Assert.IsFalse(graph.Node.Any(n => n.OpType is "QuantizeLinear" or "DequantizeLinear"), "a float graph");

        var ml = new MLContext(seed: 1);
        var (train, _, _) = FashionData.Load(ml, train: true, 200);
        var options = new OnnxQuantizationOptions { ModelBytes = float32, PerChannelWeights = false, CrossLayerEqualization = true, BiasCorrection = true };
        using var model = ml.Quantization().Observer(options).Fit(train);
        StringAssert.StartsWith(model.Report.Algorithm, "Observer + CLE (ReLU6 → ReLU)");
        Assert.AreEqual(10, model.Report.Tensors.Count(t => t.Tensor == QuantType.Weight), "every weighted layer: the stem, four depthwise and four pointwise Convs, the Gemm");
        var held = ml.Data.CreateEnumerable<FashionRow>(train, false).Take(32).ToArray();
        using var input = OrtValue.CreateTensorValueFromMemory(held.SelectMany(r => r.Features).ToArray(), new long[] { held.Length, 784 });
        var exact = ZooModels.Run(float32, new[] { ("Features", input) });
        var quantized = model.Transform(ml.Data.LoadFromEnumerable(held)).GetColumn<float[]>("Score").SelectMany(s => s).ToArray();
        Assert.IsGreaterThan(0.99, ZooModels.Cosine(exact, quantized), "CLE + bias correction keep the probabilities close to float");
    }

    [TestMethod]
    public void OneEstimator_FittedTwice_GivesOneModel()
    {
        // Equalization and bias correction rescale the model's weights and biases: the second Fit must start from the
        // model as given, not from the first Fit's edits.
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Data(Rows, 16));
        var estimator = ml.Quantization().Observer(new OnnxQuantizationOptions
        {
            ModelBytes = ImbalancedChain(relu6: true), PerChannelWeights = false, CrossLayerEqualization = true, BiasCorrection = true, WeightSizeBudget = 0.2,
        });
        using var first = estimator.Fit(data);
        using var second = estimator.Fit(data);
        CollectionAssert.AreEqual(first.GetOnnxBytes(), second.GetOnnxBytes());
    }

    [TestMethod]
    public void Options_AreCheckedUpFront_NamingTheOneAtFault()
    {
        var ml = new MLContext(seed: 1);
        var float32 = ImbalancedChain(relu6: false);
        var data = ml.Data.LoadFromEnumerable(Data(4, 1));
        void Refused(string parameter, OnnxQuantizationOptions options) =>
            Assert.AreEqual(parameter, Assert.Throws<ArgumentException>(() => ml.Quantization().Observer(options)).ParamName);
        Refused("WeightBits", new OnnxQuantizationOptions { ModelBytes = float32, WeightBits = 9 });
        Refused("Iterations", new OnnxQuantizationOptions { ModelBytes = float32, AdaRound = new AdaRoundOptions { Iterations = 0 } });
        Refused("ValidationData", new OnnxQuantizationOptions { ModelBytes = float32, AccuracyTolerance = AccuracyTolerance.Absolute(0.01) });
        Refused("Metric", new OnnxQuantizationOptions { ModelBytes = float32, AccuracyTolerance = AccuracyTolerance.Absolute(0.01), ValidationData = data });
        Refused("Metric", new OnnxQuantizationOptions
        {
            ModelBytes = float32, AccuracyTolerance = AccuracyTolerance.Absolute(0.01), ValidationData = data, Metric = QuantizationMetric.MulticlassAccuracy(),
        });
        Refused("AccuracyTolerance", new OnnxQuantizationOptions { ModelBytes = float32, ValidationData = data });
        Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => AccuracyTolerance.Absolute(-1));
    }
}
