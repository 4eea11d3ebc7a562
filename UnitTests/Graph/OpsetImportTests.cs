using Microsoft.ML.OnnxRuntime;
using MLNetQuant.Graph;
using MLNetQuant.Onnx;
using Onnx;

namespace MLNetQuant.UnitTests.Graph;

/// <summary>The importer carries old-opset models to opset 13 without changing what they compute: small models
/// written at opsets 7–10 with the ops whose form changed (attributes that became inputs, Softmax's coerced axis,
/// Upsample, BatchNormalization's spatial) give the same outputs in ONNX Runtime before and after import; what it
/// cannot carry is named.</summary>
[TestClass]
public sealed class OpsetImportTests
{
    private static readonly Dictionary<string, object> NoAttributes = new();

    private static AttributeProto Ints(string name, params long[] values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        attribute.Ints.AddRange(values);
        return attribute;
    }

    private static AttributeProto Float(string name, float value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = value };

    private static AttributeProto Int(string name, long value) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = value };

    private static AttributeProto Floats(string name, params float[] values)
    {
        var attribute = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Floats };
        attribute.Floats.AddRange(values);
        return attribute;
    }

    // x [N, 2, 4, 4] → op(s) → y; the model is built at the given opset.
    private static byte[] Model(int opset, Func<OnnxGraphBuilder, string, string> body, params long[] outputDims)
    {
        var builder = new OnnxGraphBuilder();
        var x = builder.Input("x", 2, 4, 4);
        builder.Output("y", body(builder, x), OnnxGraphBuilder.ElementType.Float, outputDims);
        return builder.Build(opset, new Dictionary<string, string>());
    }

    private static float[] Run(byte[] model, float[] x)
    {
        using var session = new InferenceSession(model);
        using var input = OrtValue.CreateTensorValueFromMemory(x, new long[] { 2, 2, 4, 4 });
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, new[] { "x" }, new[] { input }, new[] { "y" });
        return outputs[0].GetTensorDataAsSpan<float>().ToArray();
    }

    private static (ImportSummary Summary, byte[] Imported) Import(byte[] model)
    {
        var proto = ModelProto.Parser.ParseFrom(model);
        var summary = OnnxImporter.Import(proto, "test model");
        return (summary, Google.Protobuf.MessageExtensions.ToByteArray(proto));
    }

    public static IEnumerable<object[]> OldForms()
    {
        yield return new object[] { "Clip-6 min/max attributes", 10, (Func<OnnxGraphBuilder, string, string>)((b, x) =>
            b.Node("Clip", "clip", new[] { x }, new[] { Float("min", -0.5f), Float("max", 0.7f) })), new long[] { 2, 4, 4 } };
        yield return new object[] { "Softmax-1 on the flattened rows", 11, (Func<OnnxGraphBuilder, string, string>)((b, x) =>
            b.Node("Softmax", "softmax", new[] { x }, new[] { Int("axis", 1) })), new long[] { 2, 4, 4 } };
        yield return new object[] { "Softmax-1 at the last axis (rank from inference)", 11, (Func<OnnxGraphBuilder, string, string>)LastAxisSoftmax, new long[] { 2, 4, 4 } };
        yield return new object[] { "Softmax-1 at the last axis of a Conv output (rank from ONNX Runtime's inference)", 11,
            (Func<OnnxGraphBuilder, string, string>)ConvSoftmax, new long[] { 2, 4, 4 } };
        yield return new object[] { "Softmax-1 at the last axis of a Reshape to a computed shape", 11, (Func<OnnxGraphBuilder, string, string>)ComputedShapeSoftmax,
            new long[] { 2, 4, 4 } };
        yield return new object[] { "LogSoftmax-1 at axis 2", 9, (Func<OnnxGraphBuilder, string, string>)((b, x) =>
            b.Node("LogSoftmax", "logsoftmax", new[] { x }, new[] { Int("axis", 2) })), new long[] { 2, 4, 4 } };
        yield return new object[] { "Upsample-9 nearest", 9, (Func<OnnxGraphBuilder, string, string>)((b, x) =>
            b.Node("Upsample", "upsample", new[] { x, b.Initializer("scales", new[] { 1f, 1f, 2f, 2f }, 4) }, new Dictionary<string, object> { ["mode"] = "nearest" })),
            new long[] { 2, 8, 8 } };
        yield return new object[] { "Upsample-7 bilinear with scales attribute", 7, (Func<OnnxGraphBuilder, string, string>)((b, x) =>
            b.Node("Upsample", "upsample", new[] { x }, new[] { Floats("scales", 1f, 1f, 2f, 2f), new AttributeProto { Name = "mode", Type = AttributeProto.Types.AttributeType.String, S = Google.Protobuf.ByteString.CopyFromUtf8("linear") } })),
            new long[] { 2, 8, 8 } };
        yield return new object[] { "Slice-1 attributes", 9, (Func<OnnxGraphBuilder, string, string>)((b, x) =>
            b.Node("Slice", "slice", new[] { x }, new[] { Ints("starts", 1, 0), Ints("ends", 3, 1), Ints("axes", 2, 1) })), new long[] { 1, 2, 4 } };
        yield return new object[] { "Unsqueeze-1 and Squeeze-1 axes", 11, (Func<OnnxGraphBuilder, string, string>)((b, x) =>
            b.Node("Squeeze", "squeeze", new[] { b.Node("Unsqueeze", "unsqueeze", new[] { x }, new[] { Ints("axes", 2) }) }, new[] { Ints("axes", 2) })),
            new long[] { 2, 4, 4 } };
        yield return new object[] { "ReduceSum-11 axes attribute", 11, (Func<OnnxGraphBuilder, string, string>)((b, x) =>
            b.Node("ReduceSum", "sum", new[] { x }, new[] { Ints("axes", 3), Int("keepdims", 1) })), new long[] { 2, 4, 1 } };
        yield return new object[] { "Pad-2 attributes", 10, (Func<OnnxGraphBuilder, string, string>)((b, x) =>
            b.Node("Pad", "pad", new[] { x }, new[] { Ints("pads", 0, 0, 1, 1, 0, 0, 1, 1), Float("value", 0.25f) })), new long[] { 2, 6, 6 } };
        yield return new object[] { "Split-2 split attribute (one part: the builder writes one output per node)", 12,
            (Func<OnnxGraphBuilder, string, string>)((b, x) => b.Node("Split", "split", new[] { x }, new[] { Ints("split", 4), Int("axis", 2) })),
            new long[] { 2, 4, 4 } };
        yield return new object[] { "CumSum-11 (same at 13)", 11, (Func<OnnxGraphBuilder, string, string>)((b, x) =>
            b.Node("CumSum", "cumsum", new[] { x, b.Initializer("axis", new long[] { 2 }) }, new[] { Int("exclusive", 1) })), new long[] { 2, 4, 4 } };
        yield return new object[] { "BatchNormalization-7 spatial and Dropout", 8, (Func<OnnxGraphBuilder, string, string>)((b, x) =>
        {
            var bn = b.Node("BatchNormalization", "bn", new[] { x, b.Initializer("g", new[] { 1.5f, 0.5f }, 2), b.Initializer("b", new[] { 0.1f, -0.2f }, 2),
                b.Initializer("m", new[] { 0.3f, -0.1f }, 2), b.Initializer("v", new[] { 2f, 0.5f }, 2) }, new[] { Int("spatial", 1), Float("epsilon", 1e-5f) });
            return b.Node("Dropout", "dropout", new[] { bn }, new[] { Float("ratio", 0.5f) });
        }), new long[] { 2, 4, 4 } };
    }

    [TestMethod]
    [DynamicData(nameof(OldForms))]
    public void OldOpsetForm_ComputesTheSameAtOpset13(string what, int opset, Func<OnnxGraphBuilder, string, string> body, long[] outputDims)
    {
        var original = Model(opset, body, outputDims);
        var (summary, imported) = Import(original);
        Assert.AreEqual(opset, summary.SourceOpset, what);
        Assert.AreEqual(13, summary.Opset, what);
        Assert.AreEqual(13, ModelProto.Parser.ParseFrom(imported).OpsetImport.Single().Version, $"{what}: the model declares opset 13");
        var x = ZooModels.Noise(2 * 2 * 4 * 4, 7);
        var expected = Run(original, x);
        var actual = Run(imported, x);
        Assert.HasCount(expected.Length, actual, what);
        for (var i = 0; i < expected.Length; i++)
            Assert.AreEqual(expected[i], actual[i], 1e-5f, $"{what}: element {i}");
    }

    private static string LastAxisSoftmax(OnnxGraphBuilder b, string x) => b.Node("Softmax", "softmax", new[] { x }, new[] { Int("axis", 3) });

    // A Conv's output rank is not read off the graph's structure: ONNX Runtime's inference gives it.
    private static string ConvSoftmax(OnnxGraphBuilder b, string x) => b.Node("Softmax", "softmax",
        new[] { b.Node("Conv", "conv", new[] { x, b.Initializer("w", ZooModels.Noise(4, 9), 2, 2, 1, 1) }, Array.Empty<AttributeProto>()) }, new[] { Int("axis", 3) });

    // As transformer exports split heads: the target shape is built at run time from the input's own batch size.
    private static string ComputedShapeSoftmax(OnnxGraphBuilder b, string x)
    {
        var batch = b.Node("Unsqueeze", "batch", new[] { b.Node("Gather", "gather", new[] { b.Node("Shape", "shape", new[] { x }), b.Initializer("zero", new long[] { 0 }) }) },
            new[] { Ints("axes", 0) });
        var shape = b.Node("Concat", "target", new[] { batch, b.Initializer("rest", new long[] { 2, 4, 4 }, 3) }, new[] { Int("axis", 0) });
        return b.Node("Softmax", "softmax", new[] { b.Node("Reshape", "reshape", new[] { x, shape }) }, new[] { Int("axis", 3) });
    }

    [TestMethod]
    public void SoftmaxAtTheLastAxis_StaysOneNode_OtherAxesAreFlattened()
    {
        foreach (var (body, flattened) in new (Func<OnnxGraphBuilder, string, string>, bool)[]
                 {
                     (LastAxisSoftmax, false), (ConvSoftmax, false), (ComputedShapeSoftmax, false),
                     ((b, x) => b.Node("Softmax", "softmax", new[] { x }, new[] { Int("axis", 1) }), true),
                 })
        {
            var nodes = ModelProto.Parser.ParseFrom(Import(Model(11, body, 2, 4, 4)).Imported).Graph.Node;
            var softmax = nodes.Single(n => n.OpType == "Softmax");
            Assert.AreEqual(-1, softmax.Attribute.Single(a => a.Name == "axis").I);
            Assert.AreEqual(flattened, nodes.Any(n => n.OpType == "Flatten"), flattened ? "axis 1 of 4: the rows are flattened" : "the last axis: one Softmax, as at opset 13");
        }
    }

    [TestMethod]
    public void ConvBatchNorm_IsFolded_AndComputesTheSame()
    {
        var random = new Random(3);
        float[] Values(int n) => Enumerable.Range(0, n).Select(_ => (float)(random.NextDouble() - 0.5)).ToArray();
        var original = Model(9, (b, x) =>
        {
            var conv = b.Node("Conv", "conv", new[] { x, b.Initializer("w", Values(3 * 2 * 3 * 3), 3, 2, 3, 3), b.Initializer("c", Values(3), 3) },
                new[] { Ints("pads", 1, 1, 1, 1) });
            var bn = b.Node("BatchNormalization", "bn", new[] { conv, b.Initializer("g", Values(3), 3), b.Initializer("b", Values(3), 3),
                b.Initializer("m", Values(3), 3), b.Initializer("v", Values(3).Select(v => v + 1f).ToArray(), 3) }, NoAttributes);
            var transposed = b.Node("ConvTranspose", "deconv", new[] { bn, b.Initializer("tw", Values(3 * 2 * 2 * 2), 3, 2, 2, 2) },
                new[] { Ints("strides", 2, 2) });
            var bn2 = b.Node("BatchNormalization", "bn2", new[] { transposed, b.Initializer("g2", Values(2), 2), b.Initializer("b2", Values(2), 2),
                b.Initializer("m2", Values(2), 2), b.Initializer("v2", Values(2).Select(v => v + 1f).ToArray(), 2) }, NoAttributes);
            return b.Node("Relu", "relu", new[] { bn2 });
        }, 2, 8, 8);
        var (summary, imported) = Import(original);
        Assert.AreEqual(2, summary.FoldedBatchNorms, "into the Conv and into the ConvTranspose");
        Assert.IsFalse(ModelProto.Parser.ParseFrom(imported).Graph.Node.Any(n => n.OpType == "BatchNormalization"));
        var x = ZooModels.Noise(2 * 2 * 4 * 4, 8);
        var expected = Run(original, x);
        var actual = Run(imported, x);
        for (var i = 0; i < expected.Length; i++) Assert.AreEqual(expected[i], actual[i], 1e-5f, $"element {i}");
    }

    [TestMethod]
    public void AnOpTheUpgradeDoesNotKnow_IsNamedWithItsNodeAndOpset()
    {
        var model = Model(9, (b, x) => b.Node("ImageScaler", "scaler", new[] { x }, new[] { Float("scale", 2f) }), 2, 4, 4);
        var e = Assert.ThrowsExactly<NotSupportedException>(() => Import(model));
        StringAssert.Contains(e.Message, "'scaler'");
        StringAssert.Contains(e.Message, "ImageScaler");
        StringAssert.Contains(e.Message, "opset 9");
    }

    [TestMethod]
    [DataRow(6)]
    [DataRow(22)]
    public void OpsetsOutside7To21_AreRefused(int opset)
    {
        var model = Model(opset, (b, x) => b.Node("Relu", "relu", new[] { x }), 2, 4, 4);
        var e = Assert.ThrowsExactly<NotSupportedException>(() => Import(model));
        StringAssert.Contains(e.Message, $"opset {opset}");
        StringAssert.Contains(e.Message, "7–21");
    }

    [TestMethod]
    public void NewerOpsets_KeepTheirOpset()
    {
        var (summary, imported) = Import(Model(17, (b, x) => b.Node("Relu", "relu", new[] { x }), 2, 4, 4));
        Assert.AreEqual(17, summary.Opset);
        Assert.AreEqual(17, ModelProto.Parser.ParseFrom(imported).OpsetImport.Single().Version);
    }
}
