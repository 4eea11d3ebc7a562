using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.OnnxRuntime;
using MLNetQuant.Onnx;
using MLNetQuant.OnnxPtq;
using MLNetQuant.UnitTests.Graph;
using Onnx;

namespace MLNetQuant.UnitTests.OnnxPtq;

/// <summary>Static int8 with <see cref="OnnxQuantizationOptions.CpuMatMulKernels"/> writes a Hugging Face BERT
/// export's self-attention block as ONNX Runtime's QAttention: the same integer projections and the same float
/// attention, one kernel.</summary>
[TestClass]
public sealed class QuantizedAttentionFusionTests
{
    private const int Tokens = 6, Hidden = 16, Heads = 2;

    public TestContext TestContext { get; set; } = null!;

    [TestMethod]
    [DataRow(2.8284271f, 1)] // √head_size: BERT's scaling, fused
    [DataRow(3f, 0)]         // any other divisor: QAttention cannot express it, left as it is
    public void BertSelfAttention_BecomesOneQAttention_AndComputesWhatTheQdqFormComputes(float divisor, int expectedFused) =>
        WithBertAttentionLayer(divisor, path =>
        {
            var ml = new MLContext(seed: 1);
            var calibration = ml.Data.LoadFromEnumerable(Rows(48, 1));
            var qdqOptions = OnnxQuantizationOptions.ForTransformers(path);
            qdqOptions.CpuMatMulKernels = false;
            using var fused = ml.Quantization().Observer(OnnxQuantizationOptions.ForTransformers(path)).Fit(calibration);
            using var qdq = ml.Quantization().Observer(qdqOptions).Fit(calibration);

            var written = ModelProto.Parser.ParseFrom(fused.GetOnnxBytes()).Graph.Node;
            Assert.AreEqual(expectedFused, written.Count(n => n.OpType == "QAttention" && n.Domain == "com.microsoft"));
            Assert.AreEqual(1 - expectedFused, written.Count(n => n.OpType == "Softmax"), "the fused block's Softmax is gone, an unfused one stays");
            Assert.AreEqual(expectedFused == 1 ? 1 : 4, written.Count(n => n.OpType == "MatMulIntegerToFloat"), "the output projection (and unfused Q, K, V) stay integer MatMuls");
            if (expectedFused == 1)
                Assert.Contains("QAttention", ZooModels.OptimizedOps(fused.GetOnnxBytes()), "ONNX Runtime runs the fused kernel");

            // Rows padded to different lengths: a mask the fused kernel ignored would change the real tokens' outputs.
            var held = Rows(16, 2);
            var (a, largest, scale) = Compare(ml, fused, qdq, calibration.Schema, held);
            TestContext.WriteLine($"divisor {divisor}: largest difference to the QDQ form {largest:G3} (outputs up to {scale:G3}); cosine to float {ZooModels.Cosine(Float(path, held), a):F5}");
            Assert.IsLessThan(1e-4 * scale, largest, "the same integer projections and float attention");
            Assert.IsGreaterThanOrEqualTo(0.99, ZooModels.Cosine(Float(path, held), a));
            var unmasked = held.Select(r => new Row { x = r.x, attention_mask = Enumerable.Repeat(1L, Tokens).ToArray() }).ToArray();
            Assert.IsGreaterThan(1e-2 * scale, Run(fused.GetOnnxBytes(), unmasked).Zip(a).Max(p => Math.Abs(p.First - p.Second)),
                "the comparison is sensitive to the mask: the padded noise changes the outputs when nothing hides it");
        });

    [TestMethod]
    public void Dynamic_WithCpuAttentionKernels_FusesTheBlock_AndComputesWhatTheUnfusedFormComputes() =>
        WithBertAttentionLayer(2.8284271f, path =>
        {
            var ml = new MLContext(seed: 1);
            var schema = ml.Data.LoadFromEnumerable(Rows(2, 1));
            using var fused = ml.Quantization().Dynamic(new DynamicQuantizationOptions { ModelPath = path, CpuAttentionKernels = true }).Fit(schema);
            using var plain = ml.Quantization().Dynamic(new DynamicQuantizationOptions { ModelPath = path }).Fit(schema);
            Assert.AreEqual(1, ModelProto.Parser.ParseFrom(fused.GetOnnxBytes()).Graph.Node.Count(n => n.OpType == "QAttention"));
            Assert.IsFalse(ModelProto.Parser.ParseFrom(plain.GetOnnxBytes()).Graph.Node.Any(n => n.Domain == "com.microsoft"), "off by default: standard ops only");

            var held = Rows(16, 2);
            var (a, largest, scale) = Compare(ml, fused, plain, schema.Schema, held);
            TestContext.WriteLine($"dynamic: largest difference to the unfused form {largest:G3} (outputs up to {scale:G3})");
            Assert.IsLessThan(1e-4 * scale, largest, "the same run-time quantized input, integer projections and float attention");
            Assert.IsGreaterThanOrEqualTo(0.99, ZooModels.Cosine(Float(path, held), a));
        });

    // The test body on a temporary file holding one BERT attention layer scaled by 1/divisor.
    private static void WithBertAttentionLayer(float divisor, Action<string> test)
    {
        var path = Path.Combine(Path.GetTempPath(), $"mlnetquant-bert-attention-{Guid.NewGuid():N}.onnx");
        File.WriteAllBytes(path, BertAttentionLayer(divisor));
        try
        {
            test(path);
        }
        finally
        {
            File.Delete(path);
        }
    }

    // The fused model's outputs after a .zip reload, their largest difference to the reference model's, and the
    // reference's largest output.
    private static (float[] Fused, float Largest, float Scale) Compare(MLContext ml, ITransformer fused, ITransformer reference, DataViewSchema schema, Row[] rows)
    {
        var a = ZooModels.ScoresAfterReload(ml, fused, schema, rows);
        var b = ZooModels.ScoresAfterReload(ml, reference, schema, rows);
        return (a, a.Zip(b).Max(p => Math.Abs(p.First - p.Second)), b.Max(Math.Abs));
    }

    // One self-attention block as transformers' torch.onnx export writes it at opset 13: biased Q/K/V MatMuls, head
    // split by Reshape to a shape computed from Shape/Gather/Concat, Transposes, scores / divisor + the additive mask
    // (1 − mask) · −10000, Softmax, context Transpose and Reshape back, output projection.
    private static byte[] BertAttentionLayer(float divisor)
    {
        const int headSize = Hidden / Heads;
        var onnx = new OnnxGraphBuilder();
        var x = onnx.Input("x", Tokens, Hidden);
        long[] I(params long[] v) => v;
        var weight = 0;
        string Linear(string input, string name)
        {
            var w = onnx.Initializer($"{name}.weight", ZooModels.Noise(Hidden * Hidden, 10 + weight).Select(v => v / 4).ToArray(), Hidden, Hidden);
            var bias = onnx.Initializer($"{name}.bias", ZooModels.Noise(Hidden, 20 + weight++).Select(v => v / 10).ToArray(), Hidden);
            return onnx.Node("Add", $"{name}.add", new[] { bias, onnx.Node("MatMul", name, new[] { input, w }) });
        }
        string Dim(string tensor, long axis) => onnx.Node("Unsqueeze", "unsqueeze",
            new[] { onnx.Node("Gather", "gather", new[] { onnx.Node("Shape", "shape", new[] { tensor }), onnx.Initializer("axis", I(axis)) }), onnx.Initializer("zero", I(0), 1) });
        string Heads4D(string tensor, long[] perm) => onnx.Node("Transpose", "transpose", new[] { onnx.Node("Reshape", "split_heads", new[] { tensor,
            onnx.Node("Concat", "heads_shape", new[] { Dim(tensor, 0), Dim(tensor, 1), onnx.Initializer("heads", I(Heads), 1), onnx.Initializer("head_size", I(headSize), 1) },
                new Dictionary<string, object> { ["axis"] = 0L }) }) }, new Dictionary<string, object> { ["perm"] = perm });

        var mask = onnx.Node("Cast", "mask_float", new[] { onnx.Node("Unsqueeze", "mask_2", new[] { onnx.Node("Unsqueeze", "mask_1",
            new[] { "attention_mask", onnx.Initializer("axis1", I(1), 1) }), onnx.Initializer("axis2", I(2), 1) }) }, new Dictionary<string, object> { ["to"] = 1L });
        var additive = onnx.Node("Mul", "mask_additive", new[] { onnx.Node("Sub", "mask_inverted", new[] { onnx.Initializer("one", new[] { 1f }), mask }),
            onnx.Initializer("minus", new[] { -10000f }) });
        var q = Heads4D(Linear(x, "query"), I(0, 2, 1, 3));
        var k = Heads4D(Linear(x, "key"), I(0, 2, 3, 1));
        var v = Heads4D(Linear(x, "value"), I(0, 2, 1, 3));
        var scores = onnx.Node("Add", "masked", new[] { onnx.Node("Div", "scaled", new[] { onnx.Node("MatMul", "qk", new[] { q, k }), onnx.Initializer("sqrt_d", new[] { divisor }) }), additive });
        var probabilities = onnx.Node("Softmax", "softmax", new[] { scores }, new Dictionary<string, object> { ["axis"] = -1L });
        var context = onnx.Node("Transpose", "context", new[] { onnx.Node("MatMul", "pv", new[] { probabilities, v }) }, new Dictionary<string, object> { ["perm"] = I(0, 2, 1, 3) });
        var merged = onnx.Node("Reshape", "merge_heads", new[] { context, onnx.Node("Concat", "merged_shape",
            new[] { Dim(context, 0), Dim(context, 1), onnx.Initializer("hidden", I(Hidden), 1) }, new Dictionary<string, object> { ["axis"] = 0L }) });
        onnx.Output("y", Linear(merged, "output"), OnnxGraphBuilder.ElementType.Float, Tokens, Hidden);

        var model = ModelProto.Parser.ParseFrom(onnx.Build(13, new Dictionary<string, string>()));
        var input = new ValueInfoProto { Name = "attention_mask", Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = 7, Shape = new TensorShapeProto() } } };
        input.Type.TensorType.Shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = "N" });
        input.Type.TensorType.Shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = Tokens });
        model.Graph.Input.Add(input);
        return Google.Protobuf.MessageExtensions.ToByteArray(model);
    }

    private static float[] Float(string path, Row[] rows) => Run(File.ReadAllBytes(path), rows);

    private static float[] Run(byte[] model, Row[] rows)
    {
        using var x = OrtValue.CreateTensorValueFromMemory(rows.SelectMany(r => r.x).ToArray(), new long[] { rows.Length, Tokens, Hidden });
        using var mask = OrtValue.CreateTensorValueFromMemory(rows.SelectMany(r => r.attention_mask).ToArray(), new long[] { rows.Length, Tokens });
        return ZooModels.Run(model, new[] { ("x", x), ("attention_mask", mask) });
    }

    // Hidden states of unit scale, 3–6 real tokens per row; the padded positions hold noise too (the mask must hide it).
    private static Row[] Rows(int count, int seed)
    {
        var random = new Random(seed);
        var noise = ZooModels.Noise(count * Tokens * Hidden, seed + 100);
        return Enumerable.Range(0, count).Select(r =>
        {
            var length = random.Next(3, Tokens + 1);
            return new Row
            {
                x = noise.AsSpan(r * Tokens * Hidden, Tokens * Hidden).ToArray(),
                attention_mask = Enumerable.Range(0, Tokens).Select(t => t < length ? 1L : 0L).ToArray(),
            };
        }).ToArray();
    }

    private sealed class Row
    {
        [VectorType(Tokens, Hidden)]
        public float[] x { get; set; } = Array.Empty<float>();

        [VectorType(Tokens)]
        public long[] attention_mask { get; set; } = Array.Empty<long>();
    }
}
