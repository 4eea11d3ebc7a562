using Microsoft.ML;
using Microsoft.ML.Data;
using MLNetQuant.Onnx;
using MLNetQuant.OnnxPtq;
using MLNetQuant.UnitTests.Graph;
using Onnx;

namespace MLNetQuant.UnitTests.OnnxPtq;

/// <summary>Static int8 for transformers (<see cref="OnnxQuantizationOptions.ForTransformers"/>): MatMul/Gemm and
/// embedding tables quantized, LayerNorm, Softmax, GELU and the residual stream left float; SmoothQuant.</summary>
[TestClass]
public sealed class TransformerStaticQuantizationTests
{
    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [DataRow(null)]
    [DataRow(0.5)]
    public void TinyBert_ForTransformers_RunsIntegerMatMuls_KeepsTheResidualStreamFloat_AndStaysCloseToFloat(double? alpha)
    {
        var ml = new MLContext(seed: 1);
        var path = ZooModels.Path("tiny_bert_op13.onnx");
        var calibration = ml.Data.LoadFromEnumerable(ZooModels.Tokens(64, 1));
        using var quantized = ml.Quantization().Observer(OnnxQuantizationOptions.ForTransformers(path, alpha)).Fit(calibration);

        var held = ZooModels.Tokens(32, 2);
        var expected = ZooModels.TokenScores(path, held);
        var actual = ZooModels.ScoresAfterReload(ml, quantized, calibration.Schema, held);
        var cosine = ZooModels.Cosine(expected, actual);
        var bytes = quantized.GetOnnxBytes();
        var ratio = (double)bytes.Length / new FileInfo(path).Length;
        TestContext.WriteLine($"α {alpha}: cosine {cosine:F5}, size {ratio:P1}");
        Assert.IsGreaterThanOrEqualTo(0.99, cosine, "logits within cosine 0.99 of float");
        Assert.IsLessThan(0.35, ratio, "int8 weights and embedding tables");

        var ops = ZooModels.OptimizedOps(bytes);
        TestContext.WriteLine(string.Join(", ", ops.GroupBy(o => o).Select(g => $"{g.Key}×{g.Count()}")));
        var original = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path)).Graph;
        var weights = original.Initializer.Where(t => t.Dims.Count == 2).Select(t => t.Name).ToHashSet();
        var weighted = original.Node.Count(n => n.OpType is "MatMul" or "Gemm" && n.Input.Count > 1 && weights.Contains(n.Input[1]));
        Assert.AreEqual(weighted, ops.Count(o => o is "MatMulIntegerToFloat" or "QGemm") + 3 * ops.Count(o => o == "QAttention"),
            "every weighted MatMul/Gemm runs an integer kernel (QAttention: Q, K and V)");
        Assert.IsFalse(ops.Contains("QLinearMatMul"), "no projection output is requantized before its float bias Add");
        Assert.IsFalse(ops.Contains("QLinearAdd"), "the residual additions stay float");

        var report = QuantizationReport.FromOnnx(bytes);
        Assert.AreEqual(alpha is null ? "Observer" : "Observer + SmoothQuant", report.Algorithm);
        Assert.AreEqual(2, report.Tensors.Count(t => t.OpType == "Gather"), "token and position tables in int8, and no Q/DQ on other Gathers");
        var written = ModelProto.Parser.ParseFrom(bytes).Graph;
        var smoothed = written.Node.Where(n => n.OpType == "Mul" && n.Name.EndsWith(".smooth", StringComparison.Ordinal)).ToList();
        Assert.AreEqual(alpha is not null, smoothed.Count > 0);
        var initializers = written.Initializer.Select(t => t.Name).ToHashSet();
        foreach (var mul in smoothed)
            Assert.IsTrue(written.Node.FirstOrDefault(n => n.Output.Contains(mul.Input[0])) is { OpType: "Add" } beta && beta.Input.Any(initializers.Contains),
                $"{mul.Name}: only LayerNorm outputs are smoothed (the paper's scope), not the attention context or the GELU output");
        var quantizeLinear = written.Node.Where(n => n.OpType == "QuantizeLinear").Select(n => n.Input[0]).ToList();
        Assert.AreEqual(quantizeLinear.Distinct().Count(), quantizeLinear.Count, "one QuantizeLinear per activation: Q, K and V share theirs");
    }

    [TestMethod]
    public void CpuMatMulKernels_FoldTheBiasIntoMatMulIntegerToFloat_AndComputeWhatTheQdqFormComputes()
    {
        var ml = new MLContext(seed: 1);
        var path = ZooModels.Path("tiny_bert_op13.onnx");
        var calibration = ml.Data.LoadFromEnumerable(ZooModels.Tokens(32, 1));
        var qdqOptions = OnnxQuantizationOptions.ForTransformers(path);
        qdqOptions.CpuMatMulKernels = false;
        using var lowered = ml.Quantization().Observer(OnnxQuantizationOptions.ForTransformers(path)).Fit(calibration);
        using var qdq = ml.Quantization().Observer(qdqOptions).Fit(calibration);

        var written = ModelProto.Parser.ParseFrom(lowered.GetOnnxBytes()).Graph.Node;
        var integer = written.Where(n => n.OpType == "MatMulIntegerToFloat" && n.Domain == "com.microsoft").ToList();
        Assert.IsNotEmpty(integer);
        Assert.IsTrue(integer.All(n => n.Input.Count == 7 && n.Input[6].Length > 0), "each projection's bias is inside its kernel");
        Assert.IsFalse(ModelProto.Parser.ParseFrom(qdq.GetOnnxBytes()).Graph.Node.Any(n => n.Domain == "com.microsoft"), "the default stays portable QDQ");

        var held = ZooModels.Tokens(16, 2);
        var a = ZooModels.ScoresAfterReload(ml, lowered, calibration.Schema, held);
        var b = ZooModels.ScoresAfterReload(ml, qdq, calibration.Schema, held);
        for (var i = 0; i < a.Length; i++) Assert.AreEqual(b[i], a[i], 1e-4 + Math.Abs(b[i]) * 1e-4, $"logit {i}: the same integer arithmetic");
    }

    [TestMethod]
    public void SmoothQuant_MovesAnOutlierChannelIntoTheWeights_AndCutsTheError()
    {
        // y = x·W with one input channel 60× larger than the others: a per-tensor 8-bit grid spends itself on it.
        const int k = 32, n = 16, rows = 256;
        var weight = ZooModels.Noise(k * n, 5);
        var onnx = new OnnxGraphBuilder();
        var x = onnx.Input("x", k);
        onnx.Output("y", onnx.Node("MatMul", "matmul", new[] { x, onnx.Initializer("w", weight, k, n) }), OnnxGraphBuilder.ElementType.Float, n);
        var model = onnx.Build(13, new Dictionary<string, string>());
        var noise = ZooModels.Noise(rows * k, 6);
        var data = Enumerable.Range(0, rows).Select(r => new Row { Features = Enumerable.Range(0, k).Select(c => noise[r * k + c] * (c == 7 ? 60f : 1f)).ToArray() }).ToArray();
        var ml = new MLContext(seed: 1);
        var view = ml.Data.LoadFromEnumerable(data);

        double Error(double? alpha)
        {
            var options = new OnnxQuantizationOptions { ModelBytes = model, OpTypes = new List<string> { "MatMul" }, SmoothQuantAlpha = alpha, Calibration = MLNetQuant.Training.CalibrationMethod.MinMax };
            using var quantized = ml.Quantization().Observer(options).Fit(view);
            var actual = quantized.Transform(view).GetColumn<float[]>("Score").ToArray();
            double error = 0, signal = 0;
            for (var r = 0; r < rows; r++)
                for (var j = 0; j < n; j++)
                {
                    double exact = 0;
                    for (var c = 0; c < k; c++) exact += data[r].Features[c] * weight[c * n + j];
                    error += (exact - actual[r][j]) * (exact - actual[r][j]);
                    signal += exact * exact;
                }
            return error / signal;
        }
        var (plain, smoothed) = (Error(null), Error(0.5));
        TestContext.WriteLine($"relative squared error: plain {plain:G4}, SmoothQuant {smoothed:G4}");
        Assert.IsLessThan(plain / 2, smoothed, "SmoothQuant at least halves the error an outlier channel causes");
    }

    [TestMethod]
    public void Naive_WithGather_RoundsWeightsAndTables_WithoutReadingData()
    {
        var ml = new MLContext(seed: 1);
        var path = ZooModels.Path("tiny_bert_op13.onnx");
        var schemaOnly = ml.Data.LoadFromEnumerable(ZooModels.Tokens(1, 1));
        var messages = new List<string>();
        ml.Log += (_, e) => { lock (messages) messages.Add(e.Message); };
        using var rounded = ml.Quantization().Naive(OnnxQuantizationOptions.ForTransformers(path)).Fit(schemaOnly);
        Assert.IsTrue(messages.Any(m => m.Contains("SmoothQuantAlpha is not applied", StringComparison.Ordinal)), "ForTransformers' SmoothQuant is said to be skipped");
        var report = QuantizationReport.FromOnnx(rounded.GetOnnxBytes());
        Assert.AreEqual("Naive", report.Algorithm);
        Assert.IsTrue(report.Tensors.All(t => t.Tensor == QuantType.Weight), "weights and tables only: no activation grid");
        Assert.AreEqual(2, report.Tensors.Count(t => t.OpType == "Gather"));
        Assert.IsFalse(ModelProto.Parser.ParseFrom(rounded.GetOnnxBytes()).Graph.Node.Any(n => n.Domain == "com.microsoft"),
            "no integer kernels without activation grids: CpuMatMulKernels only applies to calibrated models");
        var held = ZooModels.Tokens(16, 2);
        Assert.IsGreaterThanOrEqualTo(0.99, ZooModels.Cosine(ZooModels.TokenScores(path, held), ZooModels.ScoresAfterReload(ml, rounded, schemaOnly.Schema, held)));
    }

    [TestMethod]
    public void SmoothQuantAlpha_OutsideZeroToOne_IsNamed()
    {
        var ml = new MLContext(seed: 1);
        foreach (var alpha in new[] { 0.0, 1.5, double.NaN })
        {
            var options = OnnxQuantizationOptions.ForTransformers(ZooModels.Path("tiny_bert_op13.onnx"), alpha);
            Assert.AreEqual("SmoothQuantAlpha", Assert.ThrowsExactly<ArgumentOutOfRangeException>(() => ml.Quantization().Observer(options)).ParamName);
        }
    }

    private sealed class Row
    {
        [VectorType(32)]
        public float[] Features { get; set; } = Array.Empty<float>();
    }
}
