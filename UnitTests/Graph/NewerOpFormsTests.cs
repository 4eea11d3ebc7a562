using Microsoft.ML.OnnxRuntime;
using MLNetQuant.Graph;
using MLNetQuant.Onnx;
using Onnx;
using static TorchSharp.torch;

namespace MLNetQuant.UnitTests.Graph;

/// <summary>The trainable graph computes the forms ops took after opset 13 — Resize's axes, aspect-ratio policy and
/// antialias (18), Pad's and Reduce*'s axes inputs (18), Split's num_outputs (18), Gelu (20) — and Resize's
/// coordinate rule with a given scale, as ONNX Runtime does; a form it cannot compute is named, never approximated.
/// Each case is a one-op model at the opset that introduced the form, run on both engines.</summary>
[TestClass]
public sealed class NewerOpFormsTests
{
    public TestContext TestContext { get; set; } = null!;

    private static readonly long[] FiveByFive = { 2, 5, 5 };

    public static IEnumerable<object[]> Forms()
    {
        // ONNX maps output pixel i to (i + 0.5) / scale − 0.5 with the scale given, not output/input (7/5 here).
        yield return Case("Resize nearest, scales 1.5 on 5 pixels", 13, FiveByFive,
            (b, x) => Resize(b, x, scales: new[] { 1f, 1f, 1.5f, 1.5f }));
        yield return Case("Resize linear, scales 1.5 on 5 pixels", 13, FiveByFive,
            (b, x) => Resize(b, x, scales: new[] { 1f, 1f, 1.5f, 1.5f }, attributes: new() { ["mode"] = "linear" }));
        yield return Case("Resize linear, scales 0.6 (downscale)", 13, FiveByFive,
            (b, x) => Resize(b, x, scales: new[] { 1f, 1f, 0.6f, 0.6f }, attributes: new() { ["mode"] = "linear" }));
        yield return Case("Resize cubic, scales 1.5", 13, FiveByFive,
            (b, x) => Resize(b, x, scales: new[] { 1f, 1f, 1.5f, 1.5f }, attributes: new() { ["mode"] = "cubic" }));
        yield return Case("Resize-18 with axes [2, 3] and two sizes", 18, FiveByFive,
            (b, x) => Resize(b, x, sizes: new long[] { 8, 3 }, attributes: new() { ["axes"] = new long[] { 2, 3 } }));
        yield return Case("Resize-18 with axes [3] and one scale, linear", 18, FiveByFive,
            (b, x) => Resize(b, x, scales: new[] { 2f }, attributes: new() { ["axes"] = new long[] { -1 }, ["mode"] = "linear" }));
        yield return Case("Resize-18 keep_aspect_ratio_policy not_larger", 18, new long[] { 2, 4, 6 },
            (b, x) => Resize(b, x, sizes: new long[] { 10, 10 }, attributes: new() { ["axes"] = new long[] { 2, 3 }, ["keep_aspect_ratio_policy"] = "not_larger" }));
        yield return Case("Resize-18 keep_aspect_ratio_policy not_smaller, linear", 18, new long[] { 2, 4, 6 },
            (b, x) => Resize(b, x, sizes: new long[] { 10, 10 }, attributes: new() { ["axes"] = new long[] { 2, 3 }, ["keep_aspect_ratio_policy"] = "not_smaller", ["mode"] = "linear" }));
        yield return Case("Resize-18 linear antialias, scales 0.5", 18, new long[] { 2, 8, 8 },
            (b, x) => Resize(b, x, scales: new[] { 1f, 1f, 0.5f, 0.5f }, attributes: new() { ["mode"] = "linear", ["antialias"] = 1L }));
        yield return Case("Resize-18 linear antialias, scales 2 (enlarging)", 18, FiveByFive,
            (b, x) => Resize(b, x, scales: new[] { 1f, 1f, 2f, 2f }, attributes: new() { ["mode"] = "linear", ["antialias"] = 1L }));
        yield return Case("Resize-18 cubic antialias, scales 0.4", 18, new long[] { 2, 10, 10 },
            (b, x) => Resize(b, x, scales: new[] { 1f, 1f, 0.4f, 0.4f }, attributes: new() { ["mode"] = "cubic", ["antialias"] = 1L }));
        yield return Case("Resize-18 cubic antialias exclude_outside, scales 0.5", 18, new long[] { 2, 8, 8 },
            (b, x) => Resize(b, x, scales: new[] { 1f, 1f, 0.5f, 0.5f }, attributes: new() { ["mode"] = "cubic", ["antialias"] = 1L, ["exclude_outside"] = 1L }));
        yield return Case("Resize cubic exclude_outside, cubic_coeff_a −0.5, scales 2", 13, FiveByFive,
            (b, x) => Resize(b, x, scales: new[] { 1f, 1f, 2f, 2f }, attributes: new() { ["mode"] = "cubic", ["exclude_outside"] = 1L, ["cubic_coeff_a"] = -0.5f }));
        yield return Case("Resize linear align_corners, sizes 7×3", 13, FiveByFive,
            (b, x) => Resize(b, x, sizes: new long[] { 2, 2, 7, 3 }, attributes: new() { ["mode"] = "linear", ["coordinate_transformation_mode"] = "align_corners" }));
        yield return Case("Resize nearest asymmetric ceil, scales 1.7", 13, FiveByFive,
            (b, x) => Resize(b, x, scales: new[] { 1f, 1f, 1.7f, 1.7f }, attributes: new() { ["coordinate_transformation_mode"] = "asymmetric", ["nearest_mode"] = "ceil" }));
        yield return Case("Resize-19 nearest half_pixel_symmetric, scales 1.7", 19, FiveByFive,
            (b, x) => Resize(b, x, scales: new[] { 1f, 1f, 1.7f, 1.7f }, attributes: new() { ["coordinate_transformation_mode"] = "half_pixel_symmetric" }));
        yield return Case("Resize-19 linear half_pixel_symmetric, scales 0.7", 19, FiveByFive,
            (b, x) => Resize(b, x, scales: new[] { 1f, 1f, 0.7f, 0.7f }, attributes: new() { ["mode"] = "linear", ["coordinate_transformation_mode"] = "half_pixel_symmetric" }));
        yield return Case("Pad-18 with axes [-1, 2]", 18, FiveByFive,
            (b, x) => b.Node("Pad", "pad", new[] { x, b.Initializer("pads", new long[] { 1, 0, 2, 3 }, 4), b.Initializer("value", new[] { 0.5f }), b.Initializer("axes", new long[] { -1, 2 }, 2) }));
        yield return Case("ReduceMax-18 axes input", 18, FiveByFive,
            (b, x) => b.Node("ReduceMax", "max", new[] { x, b.Initializer("axes", new long[] { 1, -1 }, 2) }));
        yield return Case("ReduceMean-18 axes input, keepdims 0", 18, FiveByFive,
            (b, x) => b.Node("ReduceMean", "mean", new[] { x, b.Initializer("axes", new long[] { 2 }, 1) }, new Dictionary<string, object> { ["keepdims"] = 0L }));
        yield return Case("Gelu-20 tanh", 20, FiveByFive,
            (b, x) => b.Node("Gelu", "gelu", new[] { x }, new Dictionary<string, object> { ["approximate"] = "tanh" }));
    }

    [TestMethod]
    [DynamicData(nameof(Forms))]
    public void NewerForm_ComputesWhatOnnxRuntimeComputes(string what, int opset, long[] inputDims, Func<OnnxGraphBuilder, string, string> body)
    {
        var model = Model(opset, inputDims, body);
        var shape = new[] { 2L }.Concat(inputDims).ToArray();
        var x = ZooModels.Noise((int)shape.Aggregate(1L, (a, b) => a * b), seed: 11);
        var (expected, expectedShape) = RunOnnxRuntime(model, x, shape);
        var (actual, actualShape) = RunTorchSharp(model, x, shape);
        CollectionAssert.AreEqual(expectedShape, actualShape, $"{what}: output shape");
        var worst = expected.Zip(actual).Max(p => MathF.Abs(p.First - p.Second));
        TestContext.WriteLine($"{what}: [{string.Join(", ", actualShape)}], largest difference {worst:E2}");
        Assert.IsLessThanOrEqualTo(1e-5f, worst, what);
    }

    [TestMethod]
    public void Split18_NumOutputs_GivesUnevenParts()
    {
        // num_outputs 2 over 5 rows: parts of 3 and 2 (the last smaller), as ONNX Runtime splits.
        var builder = new OnnxGraphBuilder();
        var x = builder.Input("x", 2, 5, 5);
        var split = builder.Node("Split", "split", new[] { x }, new Dictionary<string, object> { ["axis"] = 2L, ["num_outputs"] = 2L });
        builder.Output("y", split, OnnxGraphBuilder.ElementType.Float, 2, 3, 5);
        var proto = ModelProto.Parser.ParseFrom(builder.Build(18, new Dictionary<string, string>()));
        proto.Graph.Node.Single(n => n.OpType == "Split").Output.Add("second");
        proto.Graph.Output.Add(new ValueInfoProto { Name = "second", Type = proto.Graph.Output[0].Type.Clone() });
        proto.Graph.Output[1].Type.TensorType.Shape.Dim[2].DimValue = 2;
        var model = Google.Protobuf.MessageExtensions.ToByteArray(proto);
        var shape = new long[] { 2, 2, 5, 5 };
        var values = ZooModels.Noise(100, seed: 4);
        using var input = OrtValue.CreateTensorValueFromMemory(values, shape);
        using var session = new InferenceSession(model);
        using var runOptions = new RunOptions();
        using var expected = session.Run(runOptions, new[] { "x" }, new[] { input }, new[] { "y", "second" });
        var graph = Import(model);
        using (no_grad())
        using (var xTensor = tensor(values, shape))
        {
            var outputs = graph.Run(new[] { xTensor });
            Assert.HasCount(2, outputs);
            for (var k = 0; k < 2; k++)
            {
                CollectionAssert.AreEqual(expected[k].GetTensorTypeAndShape().Shape, outputs[k].shape, $"part {k}: shape");
                CollectionAssert.AreEqual(expected[k].GetTensorDataAsSpan<float>().ToArray(), outputs[k].data<float>().ToArray(), $"part {k}: values");
            }
            foreach (var output in outputs) output.Dispose();
        }
    }

    [TestMethod]
    public void ResizeForms_ItCannotCompute_AreNamed()
    {
        var cases = new (string Why, string Expected, Func<OnnxGraphBuilder, string, string> Body)[]
        {
            ("a region of interest", "coordinate_transformation_mode tf_crop_and_resize",
                (b, x) => Resize(b, x, scales: new[] { 1f, 1f, 2f, 2f }, attributes: new() { ["coordinate_transformation_mode"] = "tf_crop_and_resize" })),
            ("two scales for four axes", "scales has 2 values for 4 axes", (b, x) => Resize(b, x, scales: new[] { 2f, 2f })),
            ("an unknown mode", "resize mode bicubic", (b, x) => Resize(b, x, scales: new[] { 1f, 1f, 2f, 2f }, attributes: new() { ["mode"] = "bicubic" })),
        };
        foreach (var (why, expected, body) in cases)
        {
            var proto = ModelProto.Parser.ParseFrom(Model(18, FiveByFive, body));
            OnnxImporter.Import(proto, "test model");
            var graph = new OnnxGraphModule(proto, "test model");
            using var x = zeros(2, 2, 5, 5);
            var e = Assert.ThrowsExactly<NotSupportedException>(() => graph.forward(x), why);
            StringAssert.Contains(e.Message, "Node 'resize' (Resize)", why);
            StringAssert.Contains(e.Message, expected, why);
        }
    }

    private static object[] Case(string what, int opset, long[] inputDims, Func<OnnxGraphBuilder, string, string> body) =>
        new object[] { what, opset, inputDims, body };

    private static string Resize(OnnxGraphBuilder b, string x, float[]? scales = null, long[]? sizes = null, Dictionary<string, object>? attributes = null)
    {
        var inputs = new List<string> { x, "" };
        inputs.Add(scales is null ? "" : b.Initializer("scales", scales, scales.Length));
        if (sizes is not null) inputs.Add(b.Initializer("sizes", sizes, sizes.Length));
        return b.Node("Resize", "resize", inputs, attributes);
    }

    // x [N, inputDims…] → body → y; the output's shape is left to inference (the graph output has no dims).
    private static byte[] Model(int opset, long[] inputDims, Func<OnnxGraphBuilder, string, string> body)
    {
        var builder = new OnnxGraphBuilder();
        var x = builder.Input("x", inputDims);
        builder.Output("y", body(builder, x), OnnxGraphBuilder.ElementType.Float);
        var proto = ModelProto.Parser.ParseFrom(builder.Build(opset, new Dictionary<string, string>()));
        proto.Graph.Output[0].Type.TensorType.Shape = null;
        return Google.Protobuf.MessageExtensions.ToByteArray(proto);
    }

    private static (float[] Values, long[] Shape) RunOnnxRuntime(byte[] model, float[] x, long[] shape)
    {
        using var session = new InferenceSession(model);
        using var input = OrtValue.CreateTensorValueFromMemory(x, shape);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, new[] { "x" }, new[] { input }, new[] { "y" });
        return (outputs[0].GetTensorDataAsSpan<float>().ToArray(), outputs[0].GetTensorTypeAndShape().Shape);
    }

    private static (float[] Values, long[] Shape) RunTorchSharp(byte[] model, float[] x, long[] shape)
    {
        var graph = Import(model);
        using var _ = no_grad();
        using var input = tensor(x, shape);
        using var y = graph.forward(input);
        return (y.data<float>().ToArray(), y.shape);
    }

    private static OnnxGraphModule Import(byte[] model)
    {
        var proto = ModelProto.Parser.ParseFrom(model);
        OnnxImporter.Import(proto, "test model");
        var graph = new OnnxGraphModule(proto, "test model");
        graph.eval();
        return graph;
    }
}
