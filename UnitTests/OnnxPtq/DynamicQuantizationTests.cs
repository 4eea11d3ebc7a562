using Microsoft.ML;
using MLNetQuant.OnnxPtq;
using MLNetQuant.UnitTests.Graph;
using Onnx;

namespace MLNetQuant.UnitTests.OnnxPtq;

/// <summary>Dynamic quantization of ONNX models (<c>ml.Quantization().Dynamic</c>): int8 weights and embedding tables,
/// activations quantized at run time, run by ONNX Runtime's integer kernels.</summary>
[TestClass]
public sealed class DynamicQuantizationTests
{
    private const string TinyBert = "tiny_bert_op13.onnx";

    public TestContext TestContext { get; set; } = null!;

    private static double[] RowCosines(float[] expected, float[] actual, int rows)
    {
        var perRow = expected.Length / rows;
        return Enumerable.Range(0, rows)
            .Select(i => ZooModels.Cosine(expected.Skip(i * perRow).Take(perRow).ToArray(), actual.Skip(i * perRow).Take(perRow).ToArray())).ToArray();
    }

    [TestMethod]
    public void TinyBert_RunsIntegerKernels_CloseToFloat_AfterSaveAndReload()
    {
        var ml = new MLContext(seed: 1);
        var path = ZooModels.Path(TinyBert);
        var schemaRows = ml.Data.LoadFromEnumerable(ZooModels.Tokens(4, 1));
        using var quantized = ml.Quantization().Dynamic(new DynamicQuantizationOptions { ModelPath = path }).Fit(schemaRows);

        var held = ZooModels.Tokens(16, 2);
        var viaMlNet = ZooModels.ScoresAfterReload(ml, quantized, schemaRows.Schema, held);
        var cosines = RowCosines(ZooModels.TokenScores(path, held), viaMlNet, held.Length);
        TestContext.WriteLine($"cosine min {cosines.Min():F5} mean {cosines.Average():F5}; {quantized.GetOnnxBytes().Length / 1024} KiB vs {new FileInfo(path).Length / 1024} KiB");
        Assert.IsGreaterThanOrEqualTo(0.99, cosines.Min(), "every row's logits stay within cosine 0.99 of the float model's");
        Assert.IsLessThan(0.35, (double)quantized.GetOnnxBytes().Length / new FileInfo(path).Length, "int8 weights and tables: about a quarter of the file");

        var ops = ZooModels.OptimizedOps(quantized.GetOnnxBytes());
        TestContext.WriteLine(string.Join(", ", ops.GroupBy(o => o).Select(g => $"{g.Key}×{g.Count()}")));
        var original = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path)).Graph;
        var weights = original.Initializer.Where(t => t.Dims.Count == 2).Select(t => t.Name).ToHashSet();
        var weighted = original.Node.Count(n => n.OpType is "MatMul" or "Gemm" && n.Input.Count > 1 && weights.Contains(n.Input[1]));
        var integer = ops.Count(o => o is "DynamicQuantizeMatMul" or "MatMulIntegerToFloat" or "MatMulInteger");
        Assert.AreEqual(weighted, integer, "each MatMul/Gemm with a constant weight runs as an integer kernel");
        Assert.IsFalse(ops.Contains("Gemm"), "no float Gemm left");

        var report = QuantizationReport.FromOnnx(quantized.GetOnnxBytes());
        Assert.AreEqual("Dynamic", report.Algorithm);
        Assert.AreEqual(weighted + 2, report.Tensors.Count(t => t.Tensor == QuantType.Weight), "every weight, plus the token and position tables");
        Assert.IsTrue(report.Tensors.Where(t => t.OpType == "Gather").All(t => t.Scales.Length > 1), "embedding tables: one scale per row");
    }

    [TestMethod]
    [DataRow(false)]
    [DataRow(true)] // an explicit scale attribute: QAttention has none, so the node stays float Attention
    public void FusedAttention_BecomesQAttention_CloseToFloat(bool explicitScale)
    {
        const int tokens = 6, hidden = 16;
        var onnx = new MLNetQuant.Onnx.OnnxGraphBuilder();
        var x = onnx.Input("x", tokens, hidden);
        var attributes = new Dictionary<string, object> { ["num_heads"] = 2L };
        if (explicitScale) attributes["scale"] = 0.3f;
        var attention = onnx.Node("Attention", "attention", new[]
        {
            x, onnx.Initializer("qkv_weight", ZooModels.Noise(hidden * 3 * hidden, 3).Select(v => v / 4).ToArray(), hidden, 3 * hidden),
            onnx.Initializer("qkv_bias", ZooModels.Noise(3 * hidden, 4).Select(v => v / 10).ToArray(), 3 * hidden), "mask",
        }, attributes);
        onnx.Output("y", attention, MLNetQuant.Onnx.OnnxGraphBuilder.ElementType.Float, tokens, hidden);
        var model = ModelProto.Parser.ParseFrom(onnx.Build(13, new Dictionary<string, string>()));
        model.Graph.Node.Single(n => n.OpType == "Attention").Domain = "com.microsoft";
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "com.microsoft", Version = 1 });
        var mask = new ValueInfoProto { Name = "mask", Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = 6, Shape = new TensorShapeProto() } } };
        mask.Type.TensorType.Shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "N" });
        mask.Type.TensorType.Shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = tokens });
        model.Graph.Input.Add(mask);
        var bytes = Google.Protobuf.MessageExtensions.ToByteArray(model);

        var random = new Random(5);
        var noise = ZooModels.Noise(16 * tokens * hidden, 6);
        var rows = Enumerable.Range(0, 16).Select(r => new AttentionRow
        {
            x = noise.AsSpan(r * tokens * hidden, tokens * hidden).ToArray(),
            mask = Enumerable.Range(0, tokens).Select(t => t < random.Next(2, tokens + 1) ? 1 : 0).ToArray(),
        }).ToArray();
        var ml = new MLContext(seed: 1);
        var data = ml.Data.LoadFromEnumerable(rows);
        using var quantized = ml.Quantization().Dynamic(new DynamicQuantizationOptions { ModelBytes = bytes }).Fit(data);

        var written = ModelProto.Parser.ParseFrom(quantized.GetOnnxBytes()).Graph.Node;
        Assert.AreEqual(explicitScale ? "Attention" : "QAttention", written.Single(n => n.OpType.EndsWith("Attention", StringComparison.Ordinal)).OpType);
        using var xs = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(rows.SelectMany(r => r.x).ToArray(), new long[] { rows.Length, tokens, hidden });
        using var masks = Microsoft.ML.OnnxRuntime.OrtValue.CreateTensorValueFromMemory(rows.SelectMany(r => r.mask).ToArray(), new long[] { rows.Length, tokens });
        var expected = ZooModels.Run(bytes, new[] { ("x", xs), ("mask", masks) });
        var actual = ZooModels.ScoresAfterReload(ml, quantized, data.Schema, rows);
        var cosines = RowCosines(expected, actual, rows.Length);
        TestContext.WriteLine($"explicit scale {explicitScale}: cosine min {cosines.Min():F5}");
        Assert.IsGreaterThanOrEqualTo(0.99, cosines.Min());
        if (!explicitScale)
        {
            Assert.Contains("QAttention", ZooModels.OptimizedOps(quantized.GetOnnxBytes()));
            Assert.IsTrue(QuantizationReport.FromOnnx(quantized.GetOnnxBytes()).Tensors.Any(t => t.OpType == "Attention" && t.Tensor == QuantType.Weight && t.Scales.Length == 3 * hidden),
                "the packed weight: one scale per output column");
        }
    }

    private sealed class AttentionRow
    {
        [Microsoft.ML.Data.VectorType(6, 16)]
        public float[] x { get; set; } = Array.Empty<float>();

        [Microsoft.ML.Data.VectorType(6)]
        public int[] mask { get; set; } = Array.Empty<int>();
    }

    [TestMethod]
    public void Embeddings_StayFloat_WhenGatherIsNotListed_AndExcludedNodesStayFloat()
    {
        var ml = new MLContext(seed: 1);
        var path = ZooModels.Path(TinyBert);
        var graph = ModelProto.Parser.ParseFrom(File.ReadAllBytes(path)).Graph;
        var firstGemm = graph.Node.First(n => n.OpType == "Gemm").Name;
        var options = new DynamicQuantizationOptions { ModelPath = path, ExcludedNodes = { firstGemm } };
        options.OpTypes.Remove("Gather");
        using var quantized = ml.Quantization().Dynamic(options).Fit(ml.Data.LoadFromEnumerable(ZooModels.Tokens(2, 1)));
        var report = QuantizationReport.FromOnnx(quantized.GetOnnxBytes());
        Assert.IsFalse(report.Tensors.Any(t => t.OpType == "Gather"), "tables stay float");
        Assert.IsFalse(report.Tensors.Any(t => t.Layer == firstGemm), "the excluded node stays float");
        var written = ModelProto.Parser.ParseFrom(quantized.GetOnnxBytes()).Graph;
        Assert.IsTrue(written.Node.Any(n => n.Name == firstGemm && n.OpType == "Gemm"));
        Assert.IsFalse(written.Node.Any(n => n.OpType == "Gather" && n.Input[0].EndsWith(".table_quantized", StringComparison.Ordinal)));

        var held = ZooModels.Tokens(8, 3);
        var cosines = RowCosines(ZooModels.TokenScores(path, held), ZooModels.ScoresAfterReload(ml, quantized, ml.Data.LoadFromEnumerable(held).Schema, held), held.Length);
        Assert.IsGreaterThanOrEqualTo(0.99, cosines.Min());
    }

    [TestMethod]
    public void PerTensorAndReducedRange_WeightsStayOnTheirGrids()
    {
        var ml = new MLContext(seed: 1);
        var options = new DynamicQuantizationOptions { ModelPath = ZooModels.Path(TinyBert), PerChannelWeights = false, ReduceRange = true };
        using var quantized = ml.Quantization().Dynamic(options).Fit(ml.Data.LoadFromEnumerable(ZooModels.Tokens(2, 1)));
        var graph = ModelProto.Parser.ParseFrom(quantized.GetOnnxBytes()).Graph;
        var report = QuantizationReport.FromOnnx(quantized.GetOnnxBytes());
        Assert.IsTrue(report.Tensors.Where(t => t.Tensor == QuantType.Weight).All(t => t.Scales.Length == 1 && t.Bits == 7));
        foreach (var weight in graph.Initializer.Where(t => t.Name.EndsWith(".weight_quantized", StringComparison.Ordinal)))
        {
            var values = weight.RawData.ToByteArray().Select(b => (int)unchecked((sbyte)b)).ToArray();
            Assert.IsTrue(values.All(v => v is >= -63 and <= 63), $"{weight.Name}: 7-bit values");
            Assert.IsTrue(values.Any(v => Math.Abs(v) == 63), $"{weight.Name}: the largest weight reaches the grid's end");
        }
    }

    [TestMethod]
    public void BadOptions_AreNamed()
    {
        var ml = new MLContext(seed: 1);
        var options = new DynamicQuantizationOptions { ModelPath = ZooModels.Path(TinyBert), OpTypes = { "Conv" } };
        var error = Assert.ThrowsExactly<ArgumentException>(() => ml.Quantization().Dynamic(options));
        StringAssert.Contains(error.Message, "Conv");
        Assert.AreEqual("OpTypes", error.ParamName);
        Assert.ThrowsExactly<FileNotFoundException>(() => ml.Quantization().Dynamic(new DynamicQuantizationOptions { ModelPath = "missing.onnx" }));
        var noList = Assert.ThrowsExactly<ArgumentNullException>(() =>
            ml.Quantization().Dynamic(new DynamicQuantizationOptions { ModelPath = ZooModels.Path(TinyBert), ExcludedNodes = null! }));
        Assert.AreEqual("ExcludedNodes", noList.ParamName);
    }
}
