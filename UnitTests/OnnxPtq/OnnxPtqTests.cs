using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using MLNetQuant.OnnxPtq;
using MLNetQuant.Samples.Shared;
using MLNetQuant.Training;
using MLNetQuant.Graph;
using Onnx;

namespace MLNetQuant.UnitTests.OnnxPtq;

/// <summary>Post-training quantization of the PyTorch-exported float models in ../shared/models (nobody here wrote
/// them): every calibration method, weight-only Naive, accuracy against the float model, and ORT's fused kernels.</summary>
[TestClass]
public sealed class OnnxPtqTests
{
    public TestContext TestContext { get; set; } = null!;

    private sealed class ScoreRow
    {
        public float[] Score { get; set; } = Array.Empty<float>();
    }

    private static string Model(string name) => Graph.ZooModels.Shared(name);

    private static double Accuracy(MLContext ml, ITransformer model, IDataView test)
    {
        var predicted = ml.Data.CreateEnumerable<ScoreRow>(model.Transform(test), false).Select(r => Array.IndexOf(r.Score, r.Score.Max()));
        var labels = ml.Data.CreateEnumerable<FashionRow>(test, false).Select(r => (int)r.Label);
        return predicted.Zip(labels).Average(p => p.First == p.Second ? 1.0 : 0.0);
    }

    private static double FloatAccuracy(MLContext ml, string path, IDataView test)
    {
        var rows = ml.Data.CreateEnumerable<FashionRow>(test, false).ToArray();
        using var session = new InferenceSession(path);
        var inputName = session.InputMetadata.Keys.Single();
        var dims = session.InputMetadata[inputName].Dimensions.Skip(1).Select(d => (long)d).ToArray();
        using var input = OrtValue.CreateTensorValueFromMemory(rows.SelectMany(r => r.Features).ToArray(), new[] { (long)rows.Length }.Concat(dims).ToArray());
        using var runOptions = new RunOptions(); // kept alive across the native call (a temporary could be finalized during it)
        using var outputs = session.Run(runOptions, new[] { inputName }, new[] { input }, new[] { session.OutputMetadata.Keys.First() });
        var logits = outputs[0].GetTensorDataAsSpan<float>().ToArray();
        return rows.Select((r, i) => Array.IndexOf(logits, logits.Skip(i * 10).Take(10).Max(), i * 10) - i * 10 == r.Label ? 1.0 : 0.0).Average();
    }

    [TestMethod]
    [DataRow("fashion_cnn_fp32.onnx", CalibrationMethod.Histogram)]
    [DataRow("fashion_cnn_fp32.onnx", CalibrationMethod.MinMax)]
    [DataRow("fashion_cnn_fp32.onnx", CalibrationMethod.MovingAverageMinMax)]
    [DataRow("fashion_cnn_fp32.onnx", CalibrationMethod.Percentile)]
    [DataRow("fashion_cnn_fp32.onnx", CalibrationMethod.Entropy)]
    [DataRow("fashion_mlp_fp32.onnx", CalibrationMethod.Histogram)]
    public void Observer_QuantizesAForeignModel_CloseToItsFloatAccuracy(string file, CalibrationMethod method)
    {
        var ml = new MLContext(seed: 1);
        var (calibration, _, _) = FashionData.Load(ml, train: true, 500);
        var (test, _, _) = FashionData.Load(ml, train: false, 1000);
        var path = Model(file);
        var floatAccuracy = FloatAccuracy(ml, path, test);
        using var model = ml.Quantization().Observer(new OnnxQuantizationOptions { ModelPath = path, Calibration = method }).Fit(calibration);
        var int8Accuracy = Accuracy(ml, model, test);
        TestContext.WriteLine($"{file} {method}: float {floatAccuracy:P2}, int8 {int8Accuracy:P2}, {model.GetOnnxBytes().Length / 1024} KiB vs {new FileInfo(path).Length / 1024} KiB");
        Assert.IsGreaterThan(floatAccuracy - 0.01, int8Accuracy, "int8 stays within a point of float on 1,000 test images");
        Assert.IsLessThan(0.3, (double)model.GetOnnxBytes().Length / new FileInfo(path).Length, "int8 weights: under 30 % of the float file");
        Assert.IsTrue(model.Report.Tensors.Any(t => t.Tensor == QuantType.Input) && model.Report.Tensors.Any(t => t.Tensor == QuantType.Weight));
    }

    [TestMethod]
    public void QuantizedCnn_RunsAsFusedIntegerKernels()
    {
        var ml = new MLContext(seed: 1);
        var (calibration, _, _) = FashionData.Load(ml, train: true, 200);
        using var model = ml.Quantization().Observer(new OnnxQuantizationOptions { ModelPath = Model("fashion_cnn_fp32.onnx") }).Fit(calibration);
        var optimized = Path.Combine(Path.GetTempPath(), $"mlnetquant-ptq-opt-{Guid.NewGuid():N}.onnx");
        try
        {
            using (var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_EXTENDED, OptimizedModelFilePath = optimized })
            using (new InferenceSession(model.GetOnnxBytes(), options)) { }
            var ops = ModelProto.Parser.ParseFrom(File.ReadAllBytes(optimized)).Graph.Node.Select(n => n.OpType).ToList();
            TestContext.WriteLine(string.Join(", ", ops));
            CollectionAssert.Contains(ops, "QLinearConv");
            Assert.IsTrue(ops.Contains("QGemm") || ops.Contains("QLinearMatMul"));
            Assert.IsFalse(ops.Contains("Conv") || ops.Contains("Gemm"), "no float Conv or Gemm left");
        }
        finally
        {
            File.Delete(optimized);
        }
    }

    [TestMethod]
    public void LayerErrorReport_ListsEveryQuantizedNode_WorstFirst_AndTravelsInTheModel()
    {
        var ml = new MLContext(seed: 1);
        var (calibration, _, _) = FashionData.Load(ml, train: true, 300);
        using var model = ml.Quantization().Observer(new OnnxQuantizationOptions { ModelPath = Model("fashion_cnn_fp32.onnx") }).Fit(calibration);
        var errors = QuantizationReport.FromOnnx(model.GetOnnxBytes()).LayerErrors!;
        TestContext.WriteLine(string.Join("\n", errors.Select(e => $"{e.Node} {e.OpType} {e.SqnrDb} dB")));
        Assert.HasCount(4, errors, "two Conv and two Gemm nodes");
        CollectionAssert.AreEqual(errors.OrderBy(e => e.SqnrDb).ToArray(), errors.ToArray(), "worst first");
        Assert.IsTrue(errors.All(e => e.SqnrDb > 15), "8-bit quantization keeps every layer's output well above the noise");
        Assert.IsLessThan(60, errors[0].SqnrDb, "and the measurement is not trivially infinite");
    }

    private sealed class ImageRow
    {
        [Microsoft.ML.Data.VectorType(3 * 224 * 224)]
        public float[] Features { get; set; } = Array.Empty<float>();
    }

    [TestMethod]
    public void ResNet18_FromTheFeaturizerPackage_IsPreparedQuantizedAndFullyFused()
    {
        var path = Path.Combine(AppContext.BaseDirectory, "DnnImageModels", "ResNet18Onnx", "ResNet18.onnx");
        Assert.IsTrue(File.Exists(path), $"{path}: the Microsoft.ML.DnnImageFeaturizer.ResNet18 package copies it there");
        var ml = new MLContext(seed: 1);
        var random = new Random(3);
        var rows = Enumerable.Range(0, 8).Select(_ => new ImageRow
        {
            Features = Enumerable.Range(0, 3 * 224 * 224).Select(_ => (float)(random.NextDouble() * 255 - 120)).ToArray(),
        });
        using var model = ml.Quantization().Observer(new OnnxQuantizationOptions
        {
            ModelPath = path, CalibrationRows = 8, BatchSize = 4, ErrorReportRows = 4,
            OpTypes = { "AveragePool" }, // a feature extractor: its pooled output may carry one 8-bit rounding
        }).Fit(ml.Data.LoadFromEnumerable(rows));
        var graph = ModelProto.Parser.ParseFrom(model.GetOnnxBytes());
        Assert.IsFalse(graph.Graph.Node.Any(n => n.OpType == "BatchNormalization"), "all 22 BatchNormalization nodes folded");
        Assert.AreEqual(13, graph.OpsetImport.Single().Version, "opset 8 lifted to 13");
        Assert.AreEqual("N", graph.Graph.Input[0].Type.TensorType.Shape.Dim[0].DimParam, "batch made symbolic");

        var pad = graph.Graph.Node.Single(n => n.OpType == "Pad");
        Assert.AreEqual("Features", pad.Input[0], "the 3-channel image gains a zero channel before its QuantizeLinear …");
        CollectionAssert.AreEqual(new long[] { 64, 4, 7, 7 }, graph.Graph.Initializer.Single(t => t.Name == "Convolution249.weight_quantized").Dims.ToArray(),
            "… and the stem's weight a zero input channel, so ORT's symmetric int8 kernel runs it");
        float Scale(string quantize) => OnnxTensors.Floats(graph.Graph.Initializer.Single(t => t.Name == graph.Graph.Node.Single(n => n.Name == quantize).Input[1]))[0];
        Assert.AreEqual(Scale("Pooling255.requant.q"), Scale("Convolution249.requant.q"),
            "the stem Conv is requantized on the grid the MaxPool passes on to the next Conv, so the MaxPool stays int8");
        var stemError = model.Report.LayerErrors!.Single(e => e.Node == "Convolution249");
        Assert.IsGreaterThan(20, stemError.SqnrDb, "the padded input is compared channel by channel with the float one");

        var optimized = Path.Combine(Path.GetTempPath(), $"mlnetquant-resnet-opt-{Guid.NewGuid():N}.onnx");
        try
        {
            using (var options = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_EXTENDED, OptimizedModelFilePath = optimized })
            using (new InferenceSession(model.GetOnnxBytes(), options)) { }
            var ops = ModelProto.Parser.ParseFrom(File.ReadAllBytes(optimized)).Graph.Node.Select(n => n.OpType).ToList();
            TestContext.WriteLine(string.Join(", ", ops.GroupBy(o => o).Select(g => $"{g.Key}×{g.Count()}")));
            Assert.AreEqual(22, ops.Count(o => o == "QLinearConv"), "all 22 convs run as integer kernels");
            Assert.AreEqual(9, ops.Count(o => o == "QLinearAdd"),
                "all 9 residual sums too (each quantized node's output is requantized, so the last one feeding the pooling head fuses as well)");
            Assert.IsFalse(ops.Contains("Conv"), "no float Conv left");
            Assert.AreEqual(1, ops.Count(o => o == "QLinearAveragePool"),
                "with pooling among OpTypes the pooled output (the model's output) is requantized, so ORT pools in int8 on the channels-last layout …");
            Assert.IsFalse(ops.Contains("AveragePool"), "… with no float pool (and no transpose of the 7×7 maps back to NCHW for it)");
            Assert.AreEqual("DequantizeLinear", ops[^1], "only the pooled 512 values are dequantized");
        }
        finally
        {
            File.Delete(optimized);
        }
        Assert.AreEqual("Score", graph.Graph.Output.Single().Name, "the output keeps its column name");
        var pooled = model.Report.Tensors.Single(t => t.Layer == "Pooling395" && t.Tensor == QuantType.Output);
        Assert.IsGreaterThan(0f, pooled.Scales[0], "the pooled output has its own calibrated grid");
    }

    private sealed class SmallRow
    {
        [Microsoft.ML.Data.VectorType(32)]
        public float[] Features { get; set; } = Array.Empty<float>();
    }

    [TestMethod]
    public void MulConcatAndPooling_CanBeQuantizedToo()
    {
        // A small float model written with the project's own ONNX builder: Conv → Relu → (Relu·Relu, Concat) → GlobalAveragePool.
        var builder = new MLNetQuant.Onnx.OnnxGraphBuilder();
        var x = builder.Input("x", 2, 4, 4);
        var random = new Random(5);
        var weight = builder.Initializer("w", Enumerable.Range(0, 6).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray(), 3, 2, 1, 1);
        var relu = builder.Node("Relu", "relu", new[] { builder.Node("Conv", "conv", new[] { x, weight }) });
        var product = builder.Node("Mul", "mul", new[] { relu, relu });
        var joined = builder.Node("Concat", "concat", new[] { relu, product }, new Dictionary<string, object> { ["axis"] = 1L });
        var pooled = builder.Node("GlobalAveragePool", "pool", new[] { joined });
        builder.Output("out", builder.Node("Flatten", "flatten", new[] { pooled }), MLNetQuant.Onnx.OnnxGraphBuilder.ElementType.Float, 6);
        var floatModel = builder.Build(13, new Dictionary<string, string>());

        var ml = new MLContext(seed: 1);
        var rows = Enumerable.Range(0, 64).Select(_ => new SmallRow { Features = Enumerable.Range(0, 32).Select(_ => (float)random.NextDouble()).ToArray() }).ToArray();
        var data = ml.Data.LoadFromEnumerable(rows);
        using var model = ml.Quantization().Observer(new OnnxQuantizationOptions
        {
            ModelBytes = floatModel, OpTypes = { "Mul", "Concat", "GlobalAveragePool" }, Calibration = CalibrationMethod.MinMax,
        }).Fit(data);
        CollectionAssert.AreEquivalent(new[] { "Conv", "Mul", "Concat", "GlobalAveragePool" },
            model.Report.Tensors.Select(t => t.OpType).Distinct().ToArray(), "the optional ops are quantized with the default ones");

        using var session = new InferenceSession(floatModel);
        var flat = rows.SelectMany(r => r.Features).ToArray();
        using var input = OrtValue.CreateTensorValueFromMemory(flat, new long[] { rows.Length, 2, 4, 4 });
        using var runOptions = new RunOptions(); // kept alive across the native call (a temporary could be finalized during it)
        using var outputs = session.Run(runOptions, new[] { "x" }, new[] { input }, new[] { "out" });
        var expected = outputs[0].GetTensorDataAsSpan<float>().ToArray();
        var actual = ml.Data.CreateEnumerable<ScoreRow>(model.Transform(data), false).SelectMany(r => r.Score).ToArray();
        var dot = expected.Zip(actual).Sum(p => (double)p.First * p.Second);
        var cosine = dot / Math.Sqrt(expected.Sum(v => (double)v * v) * actual.Sum(v => (double)v * v));
        Assert.IsGreaterThan(0.999, cosine, "8-bit quantization of every op keeps the output");
    }

    [TestMethod]
    [DataRow(false, 18)]
    [DataRow(true, 18)]
    [DataRow(true, 21)]
    public void AModelAtOpset18OrLater_WithResizeAxes_PadAndReduceAxesInputs_IsQuantized(bool sizes, int opset)
    {
        // Opset 18's forms (Resize's axes attribute, Pad's and ReduceMean's axes inputs) between two convolutions.
        var builder = new MLNetQuant.Onnx.OnnxGraphBuilder();
        var x = builder.Input("x", 2, 4, 4);
        var random = new Random(8);
        float[] Weights(int count) => Enumerable.Range(0, count).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
        var relu = builder.Node("Relu", "relu", new[] { builder.Node("Conv", "conv1", new[] { x, builder.Initializer("w1", Weights(12), 6, 2, 1, 1) }) });
        // Quantized, ONNX Runtime 1.31 fails on a Resize with axes (its channels-last rewrite), so import writes it for
        // every axis: scales padded with 1, sizes completed from the input's shape at run time (the batch is symbolic).
        var resized = builder.Node("Resize", "resize", sizes
                ? new[] { relu, "", "", builder.Initializer("sizes", new long[] { 8, 8 }, 2) }
                : new[] { relu, "", builder.Initializer("scales", new[] { 2f, 2f }, 2) },
            new Dictionary<string, object> { ["axes"] = new long[] { 2, 3 }, ["mode"] = "linear" });
        var padded = builder.Node("Pad", "pad", new[] { resized, builder.Initializer("pads", new long[] { 1, 1, 1, 1 }, 4), "", builder.Initializer("pad_axes", new long[] { 2, 3 }, 2) });
        var conv2 = builder.Node("Conv", "conv2", new[] { padded, builder.Initializer("w2", Weights(162), 3, 6, 3, 3) });
        var mean = builder.Node("ReduceMean", "mean", new[] { conv2, builder.Initializer("axes", new long[] { 2, 3 }, 2) },
            new Dictionary<string, object> { ["keepdims"] = 0L });
        builder.Output("out", mean, MLNetQuant.Onnx.OnnxGraphBuilder.ElementType.Float, 3);
        var floatModel = builder.Build(opset, new Dictionary<string, string>());

        var ml = new MLContext(seed: 1);
        var rows = Enumerable.Range(0, 64).Select(_ => new SmallRow { Features = Enumerable.Range(0, 32).Select(_ => (float)random.NextDouble()).ToArray() }).ToArray();
        var data = ml.Data.LoadFromEnumerable(rows);
        using var model = ml.Quantization().Observer(new OnnxQuantizationOptions { ModelBytes = floatModel, Calibration = CalibrationMethod.MinMax }).Fit(data);
        var quantized = ModelProto.Parser.ParseFrom(model.GetOnnxBytes());
        Assert.AreEqual(opset, quantized.OpsetImport.Single(o => o.Domain is "" or "ai.onnx").Version, "the model keeps its opset");
        Assert.AreEqual(2, quantized.Graph.Node.Count(n => n.OpType == "DequantizeLinear" && n.Input[0].StartsWith("conv") && n.Input[0].Contains("weight")),
            "both convolutions have int8 weights");

        using var session = new InferenceSession(floatModel);
        using var input = OrtValue.CreateTensorValueFromMemory(rows.SelectMany(r => r.Features).ToArray(), new long[] { rows.Length, 2, 4, 4 });
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, new[] { "x" }, new[] { input }, new[] { "out" });
        var expected = outputs[0].GetTensorDataAsSpan<float>().ToArray();
        var actual = ml.Data.CreateEnumerable<ScoreRow>(model.Transform(data), false).SelectMany(r => r.Score).ToArray();
        Assert.HasCount(expected.Length, actual);
        var dot = expected.Zip(actual).Sum(p => (double)p.First * p.Second);
        var cosine = dot / Math.Sqrt(expected.Sum(v => (double)v * v) * actual.Sum(v => (double)v * v));
        Assert.IsGreaterThan(0.99, cosine, "the quantized opset-18 model computes what the float one does");
    }

    [TestMethod]
    public void APooledModelOutput_StaysExactByDefault_AndIsRequantizedWhenPoolingIsQuantized()
    {
        // Conv → Relu → GlobalAveragePool as the model's output (a feature extractor's head).
        var builder = new MLNetQuant.Onnx.OnnxGraphBuilder();
        var x = builder.Input("x", 2, 4, 4);
        var random = new Random(6);
        var weight = builder.Initializer("w", Enumerable.Range(0, 6).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray(), 3, 2, 1, 1);
        var relu = builder.Node("Relu", "relu", new[] { builder.Node("Conv", "conv", new[] { x, weight }) });
        builder.Output("pooled", builder.Node("GlobalAveragePool", "pool", new[] { relu }), MLNetQuant.Onnx.OnnxGraphBuilder.ElementType.Float, 3, 1, 1);
        var floatModel = builder.Build(13, new Dictionary<string, string>());
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(Enumerable.Range(0, 32).Select(_ => new SmallRow { Features = Enumerable.Range(0, 32).Select(_ => (float)random.NextDouble()).ToArray() }).ToArray());
        string OutputProducer(OnnxQuantizationOptions options)
        {
            using var model = ml.Quantization().Observer(options).Fit(data);
            var graph = ModelProto.Parser.ParseFrom(model.GetOnnxBytes()).Graph;
            var producers = graph.Node.ToDictionary(n => n.Output[0]);
            var node = producers[graph.Output.Single().Name];
            while (node.OpType == "Identity") node = producers[node.Input[0]];
            return node.OpType;
        }
        Assert.AreEqual("GlobalAveragePool", OutputProducer(new OnnxQuantizationOptions { ModelBytes = floatModel }),
            "by default no model output is quantized: the pool reads the dequantized maps and writes the output in float");
        Assert.AreEqual("DequantizeLinear", OutputProducer(new OnnxQuantizationOptions { ModelBytes = floatModel, OpTypes = { "GlobalAveragePool" } }),
            "with pooling among OpTypes the pooled output is requantized, so ORT can pool in int8");
    }

    [TestMethod]
    public void Naive_RoundsWeightsOnly_WithoutReadingData()
    {
        var ml = new MLContext(seed: 1);
        var (test, _, _) = FashionData.Load(ml, train: false, 1000);
        var path = Model("fashion_cnn_fp32.onnx");
        using var model = ml.Quantization().Naive(new OnnxQuantizationOptions { ModelPath = path }).Fit(test);
        Assert.IsTrue(model.Report.Tensors.All(t => t.Tensor == QuantType.Weight));
        Assert.AreEqual("Naive", model.Report.Algorithm);
        Assert.IsGreaterThan(FloatAccuracy(ml, path, test) - 0.01, Accuracy(ml, model, test));
    }

    [TestMethod]
    public void ExcludedNodes_StayFloat()
    {
        var ml = new MLContext(seed: 1);
        var (calibration, _, _) = FashionData.Load(ml, train: true, 100);
        using var model = ml.Quantization().Observer(new OnnxQuantizationOptions
        {
            ModelPath = Model("fashion_cnn_fp32.onnx"), ExcludedNodes = { "/conv1/Conv" },
        }).Fit(calibration);
        var layers = model.Report.Tensors.Select(t => t.Layer).Distinct().ToArray();
        CollectionAssert.DoesNotContain(layers, "/conv1/Conv");
        CollectionAssert.Contains(layers, "/conv2/Conv");
        var graph = ModelProto.Parser.ParseFrom(model.GetOnnxBytes()).Graph;
        Assert.IsTrue(graph.Initializer.Any(t => t.DataType == 1 && t.Dims.SequenceEqual(new long[] { 16, 1, 5, 5 })), "conv1 keeps its float weight");
    }

    [TestMethod]
    public void BadInput_IsNamed()
    {
        var ml = new MLContext(seed: 1);
        Assert.ThrowsExactly<FileNotFoundException>(() => ml.Quantization().Observer(new OnnxQuantizationOptions { ModelPath = "missing.onnx" }));
        var wrong = ml.Quantization().Observer(new OnnxQuantizationOptions { ModelPath = Model("fashion_cnn_fp32.onnx"), FeatureColumnName = "Pixels" });
        var (data, _, _) = FashionData.Load(ml, train: true, 10);
        var e = Assert.ThrowsExactly<ArgumentException>(() => wrong.Fit(data));
        StringAssert.Contains(e.Message, "'Pixels'");
    }

    private sealed class ClassNameRow
    {
        public string ClassName { get; set; } = "";
    }

    [TestMethod]
    public void PredictedLabel_OptIn_IsTheArgMaxKey_NamedByTheKeyLabel_BeforeAndAfterFit()
    {
        var ml = new MLContext(seed: 1);
        var (calibration, _, _) = FashionData.Load(ml, train: true, 200);
        var (test, _, _) = FashionData.Load(ml, train: false, 300);
        var pipeline = ml.Transforms.Conversion.MapValue("ClassName",
                FashionMnist.ClassNames.Select((n, i) => new KeyValuePair<uint, string>((uint)i, n)), "Label")
            .Append(ml.Transforms.Conversion.MapValueToKey("LabelKey", "ClassName",
                keyData: ml.Data.LoadFromEnumerable(FashionMnist.ClassNames.Select(n => new ClassNameRow { ClassName = n }))))
            .Append(ml.Quantization().Observer(new OnnxQuantizationOptions
            {
                ModelPath = Model("fashion_cnn_fp32.onnx"), PredictedLabelColumnName = "PredictedLabel", LabelColumnName = "LabelKey",
            }));
        var shape = pipeline.GetOutputSchema(SchemaShapes.Of(calibration.Schema)).Single(c => c.Name == "PredictedLabel");
        Assert.IsTrue(shape.IsKey && shape.Kind == SchemaShape.Column.VectorKind.Scalar, "a scalar key before Fit");

        var model = pipeline.Fit(calibration);
        var scored = model.Transform(test);
        var keys = scored.GetColumn<uint>("PredictedLabel").ToArray();
        var argMax = scored.GetColumn<float[]>("Score").Select(s => (uint)Array.IndexOf(s, s.Max()) + 1).ToArray();
        CollectionAssert.AreEqual(argMax, keys, "the arg-max of the model's output, as a key");
        var names = ml.Transforms.Conversion.MapKeyToValue("PredictedClass", "PredictedLabel").Fit(scored).Transform(scored)
            .GetColumn<string>("PredictedClass").ToArray();
        CollectionAssert.AreEqual(keys.Select(k => FashionMnist.ClassNames[k - 1]).ToArray(), names, "named by the key label's values");
        var metrics = ml.MulticlassClassification.Evaluate(scored, labelColumnName: "LabelKey");
        Assert.IsGreaterThan(0.8, metrics.MicroAccuracy, "ML.NET's evaluator reads the quantized model's outputs");
        model.LastTransformer.Dispose();
    }

    [TestMethod]
    public void PredictedLabel_IsOptIn_AndALabelWithoutItIsRefused()
    {
        var ml = new MLContext(seed: 1);
        var (calibration, _, _) = FashionData.Load(ml, train: true, 50);
        using (var plain = ml.Quantization().Naive(new OnnxQuantizationOptions { ModelPath = Model("fashion_cnn_fp32.onnx") }).Fit(calibration))
            Assert.IsNull(plain.GetOutputSchema(calibration.Schema).GetColumnOrNull("PredictedLabel"), "an ONNX file does not say it is a classifier");
        using (var indexed = ml.Quantization().Naive(new OnnxQuantizationOptions { ModelPath = Model("fashion_cnn_fp32.onnx"), PredictedLabelColumnName = "PredictedLabel" }).Fit(calibration))
        {
            var scored = indexed.Transform(calibration);
            var values = ml.Transforms.Conversion.MapKeyToValue("Index", "PredictedLabel").Fit(scored).Transform(scored).GetColumn<uint>("Index").ToArray();
            CollectionAssert.AreEqual(scored.GetColumn<uint>("PredictedLabel").Select(k => k - 1).ToArray(), values, "without a label the key values are the class indices");
        }
        var e = Assert.ThrowsExactly<ArgumentException>(() => ml.Quantization().Naive(new OnnxQuantizationOptions { ModelPath = Model("fashion_cnn_fp32.onnx"), LabelColumnName = "Label" }));
        StringAssert.Contains(e.Message, "PredictedLabelColumnName");
        e = Assert.ThrowsExactly<ArgumentException>(() => ml.Quantization().Naive(new OnnxQuantizationOptions { ModelPath = Model("fashion_cnn_fp32.onnx"), PredictedLabelColumnName = " " }));
        Assert.AreEqual("PredictedLabelColumnName", e.ParamName);
        var uintLabel = ml.Quantization().Naive(new OnnxQuantizationOptions { ModelPath = Model("fashion_cnn_fp32.onnx"), PredictedLabelColumnName = "PredictedLabel", LabelColumnName = "Label" });
        e = Assert.ThrowsExactly<ArgumentException>(() => uintLabel.Fit(calibration));
        StringAssert.Contains(e.Message, "'Label'");
    }
}
