using Microsoft.ML.OnnxRuntime;
using MLNetQuant.Graph;
using MLNetQuant.Onnx;
using Onnx;
using static TorchSharp.torch;

namespace MLNetQuant.UnitTests.Graph;

/// <summary>The trainable graph computes single ops as ONNX Runtime does: the forms ops took after opset 13 — Resize's
/// axes, aspect-ratio policy and antialias (18), Pad's and Reduce*'s axes inputs (18), Split's num_outputs (18), Gelu
/// (20) — Resize's every mode with the given scale in its coordinate rule, and the ops beyond the zoo models that
/// exported networks use (PRelu, Elu, Mish, CumSum, Trilu, Einsum, InstanceNormalization, ArgMax, the other reductions
/// …); a form it cannot compute is named, never approximated. Each case is a one-op model at the opset that introduced
/// the form, run on both engines.</summary>
[TestClass]
public sealed class OneOpModelTests
{
    public TestContext TestContext { get; set; } = null!;

    private static readonly long[] FiveByFive = { 2, 5, 5 };

    public static IEnumerable<object[]> Cases()
    {
        // ONNX maps output pixel i to (i + 0.5) / scale − 0.5 with the scale given, not output/input (7/5 here).
        yield return Case("Resize nearest, scales 1.5 on 5 pixels", 13, FiveByFive,
            (b, x) => Resize(b, x, scales: new[] { 1f, 1f, 1.5f, 1.5f }));
        yield return Case("Resize linear, scales 1.5 on 5 pixels", 13, FiveByFive,
            (b, x) => Resize(b, x, scales: new[] { 1f, 1f, 1.5f, 1.5f }, attributes: new() { ["mode"] = "linear" }));
        yield return Case("Resize linear, scales 0.6 (downscale)", 13, FiveByFive,
            (b, x) => Resize(b, x, scales: new[] { 1f, 1f, 0.6f, 0.6f }, attributes: new() { ["mode"] = "linear" }));
        yield return Case("Resize linear, sizes 7×9 (fused kernel)", 13, FiveByFive,
            (b, x) => Resize(b, x, sizes: new long[] { 2, 2, 7, 9 }, attributes: new() { ["mode"] = "linear" }));
        yield return Case("Resize linear on axes 1 and 2 (gathers), scales 1.5", 13, FiveByFive,
            (b, x) => Resize(b, x, scales: new[] { 1f, 1.5f, 1.5f, 1f }, attributes: new() { ["mode"] = "linear" }));
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
        yield return Case("PRelu, a slope per channel", 13, FiveByFive,
            (b, x) => b.Node("PRelu", "prelu", new[] { x, b.Initializer("slope", new[] { 0.25f, -0.5f }, 2, 1, 1) }));
        yield return Case("Elu alpha 0.7", 13, FiveByFive, (b, x) => b.Node("Elu", "elu", new[] { x }, new Dictionary<string, object> { ["alpha"] = 0.7f }));
        yield return Case("Selu", 13, FiveByFive, (b, x) => b.Node("Selu", "selu", new[] { x }));
        yield return Case("Celu alpha 2", 13, FiveByFive, (b, x) => b.Node("Celu", "celu", new[] { x }, new Dictionary<string, object> { ["alpha"] = 2f }));
        yield return Case("Mish-18", 18, FiveByFive, (b, x) => b.Node("Mish", "mish", new[] { x }));
        yield return Case("Softsign", 13, FiveByFive, (b, x) => b.Node("Softsign", "softsign", new[] { x }));
        yield return Case("Sin · Cos · Sign", 13, FiveByFive,
            (b, x) => b.Node("Mul", "mul", new[] { b.Node("Mul", "sincos", new[] { b.Node("Sin", "sin", new[] { x }), b.Node("Cos", "cos", new[] { x }) }), b.Node("Sign", "sign", new[] { x }) }));
        yield return Case("Mod fmod 1 (floats)", 13, FiveByFive,
            (b, x) => b.Node("Mod", "mod", new[] { x, b.Initializer("divisor", new[] { 0.3f }) }, new Dictionary<string, object> { ["fmod"] = 1L }));
        yield return Case("Mod fmod 0 (integers, the divisor's sign)", 13, FiveByFive, (b, x) =>
        {
            var integers = b.Node("Cast", "to_int", new[] { b.Node("Mul", "times10", new[] { x, b.Initializer("ten", new[] { 10f }) }) }, new Dictionary<string, object> { ["to"] = 7L });
            var mod = b.Node("Mod", "mod", new[] { integers, b.Initializer("divisor", new long[] { -3 }) });
            return b.Node("Cast", "to_float", new[] { mod }, new Dictionary<string, object> { ["to"] = 1L });
        });
        yield return Case("CumSum on axis −1", 13, FiveByFive, (b, x) => b.Node("CumSum", "cumsum", new[] { x, b.Initializer("axis", new long[] { -1 }) }));
        yield return Case("CumSum exclusive reverse on axis 2", 13, FiveByFive,
            (b, x) => b.Node("CumSum", "cumsum", new[] { x, b.Initializer("axis", new long[] { 2 }) }, new Dictionary<string, object> { ["exclusive"] = 1L, ["reverse"] = 1L }));
        yield return Case("Trilu-14 upper, k = 1", 14, FiveByFive, (b, x) => b.Node("Trilu", "triu", new[] { x, b.Initializer("k", new long[] { 1 }) }));
        yield return Case("Trilu-14 lower, k = −1", 14, FiveByFive,
            (b, x) => b.Node("Trilu", "tril", new[] { x, b.Initializer("k", new long[] { -1 }) }, new Dictionary<string, object> { ["upper"] = 0L }));
        yield return Case("ArgMax axis 2, last index (as float)", 13, FiveByFive, (b, x) => b.Node("Cast", "to_float", new[]
        {
            // Rounded to one decimal so ties exist and the last-index rule matters.
            b.Node("ArgMax", "argmax", new[] { b.Node("Round", "round", new[] { b.Node("Mul", "times2", new[] { x, b.Initializer("two", new[] { 2f }) }) }) },
                new Dictionary<string, object> { ["axis"] = 2L, ["select_last_index"] = 1L }),
        }, new Dictionary<string, object> { ["to"] = 1L }));
        yield return Case("ArgMin axis −1 keepdims 0 (as float)", 13, FiveByFive, (b, x) => b.Node("Cast", "to_float", new[]
        {
            b.Node("ArgMin", "argmin", new[] { x }, new Dictionary<string, object> { ["axis"] = -1L, ["keepdims"] = 0L }),
        }, new Dictionary<string, object> { ["to"] = 1L }));
        yield return Case("Einsum ...ij,jk->...ik", 13, FiveByFive,
            (b, x) => b.Node("Einsum", "einsum", new[] { x, b.Initializer("w", ZooModels.Noise(15, 5), 5, 3) }, new Dictionary<string, object> { ["equation"] = "...ij,jk->...ik" }));
        yield return Case("ScatterElements axis −1, negative indices", 13, FiveByFive, (b, x) => b.Node("ScatterElements", "scatter",
            new[] { x, b.Initializer("indices", new long[] { 0, -1, 2, 0, -1, 2, 0, -1, 2, 0, -1, 2 }, 1, 2, 2, 3), b.Initializer("updates", ZooModels.Noise(12, 6), 1, 2, 2, 3) },
            new Dictionary<string, object> { ["axis"] = -1L }));
        yield return Case("GroupNormalization-18, a scale per group", 18, new long[] { 4, 3, 3 }, (b, x) => b.Node("GroupNormalization", "groupnorm",
            new[] { x, b.Initializer("scale", new[] { 1.5f, 0.5f }, 2), b.Initializer("bias", new[] { 0.1f, -0.2f }, 2) }, new Dictionary<string, object> { ["num_groups"] = 2L }));
        yield return Case("GroupNormalization-21, a scale per channel", 21, new long[] { 4, 3, 3 }, (b, x) => b.Node("GroupNormalization", "groupnorm",
            new[] { x, b.Initializer("scale", new[] { 1.5f, 0.5f, 1f, 2f }, 4), b.Initializer("bias", new[] { 0.1f, -0.2f, 0.3f, 0f }, 4) }, new Dictionary<string, object> { ["num_groups"] = 2L }));
        yield return Case("LpNormalization p 2 axis 1", 13, FiveByFive,
            (b, x) => b.Node("LpNormalization", "l2norm", new[] { x }, new Dictionary<string, object> { ["axis"] = 1L }));
        yield return Case("LpNormalization p 1 axis −1", 13, FiveByFive,
            (b, x) => b.Node("LpNormalization", "l1norm", new[] { x }, new Dictionary<string, object> { ["p"] = 1L }));
        yield return Case("LRN size 3 on 5 channels", 13, new long[] { 5, 3, 3 }, (b, x) => b.Node("LRN", "lrn", new[] { x },
            new Dictionary<string, object> { ["size"] = 3L, ["alpha"] = 0.5f, ["beta"] = 0.6f, ["bias"] = 2f }));
        yield return Case("LRN size 5, AlexNet's defaults", 13, new long[] { 7, 3, 3 }, (b, x) => b.Node("LRN", "lrn", new[] { x },
            new Dictionary<string, object> { ["size"] = 5L }));
        yield return Case("Hardmax axis 2", 13, FiveByFive, (b, x) => b.Node("Hardmax", "hardmax", new[] { x }, new Dictionary<string, object> { ["axis"] = 2L }));
        yield return Case("GatherElements axis 3, negative indices", 13, FiveByFive, (b, x) => b.Node("GatherElements", "gather",
            new[] { x, b.Initializer("indices", Enumerable.Range(0, 2 * 2 * 5 * 2).Select(i => (long)(i % 7 - 3)).ToArray(), 2, 2, 5, 2) }, new Dictionary<string, object> { ["axis"] = 3L }));
        yield return Case("DepthToSpace DCR", 13, new long[] { 8, 2, 3 },
            (b, x) => b.Node("DepthToSpace", "d2s", new[] { x }, new Dictionary<string, object> { ["blocksize"] = 2L }));
        yield return Case("DepthToSpace CRD", 13, new long[] { 8, 2, 3 },
            (b, x) => b.Node("DepthToSpace", "d2s", new[] { x }, new Dictionary<string, object> { ["blocksize"] = 2L, ["mode"] = "CRD" }));
        yield return Case("SpaceToDepth", 13, new long[] { 2, 4, 6 },
            (b, x) => b.Node("SpaceToDepth", "s2d", new[] { x }, new Dictionary<string, object> { ["blocksize"] = 2L }));
        yield return Case("NonZero of Relu (as float)", 13, FiveByFive, (b, x) => b.Node("Cast", "to_float",
            new[] { b.Node("NonZero", "nonzero", new[] { b.Node("Relu", "relu", new[] { x }) }) }, new Dictionary<string, object> { ["to"] = 1L }));
        yield return Case("Tan · Atan · Sinh · Cosh · Asinh", 13, FiveByFive, (b, x) =>
        {
            var small = b.Node("Mul", "small", new[] { x, b.Initializer("third", new[] { 0.3f }) });
            var a = b.Node("Mul", "tan_atan", new[] { b.Node("Tan", "tan", new[] { small }), b.Node("Atan", "atan", new[] { x }) });
            var c = b.Node("Add", "sinh_cosh", new[] { b.Node("Sinh", "sinh", new[] { small }), b.Node("Cosh", "cosh", new[] { small }) });
            return b.Node("Add", "sum", new[] { b.Node("Mul", "product", new[] { a, c }), b.Node("Asinh", "asinh", new[] { x }) });
        });
        yield return Case("Asin · Acos · Atanh of tanh(0.3x), Acosh of 1 + |x|", 13, FiveByFive, (b, x) =>
        {
            var unit = b.Node("Tanh", "tanh", new[] { b.Node("Mul", "small", new[] { x, b.Initializer("third", new[] { 0.3f }) }) });
            var a = b.Node("Mul", "asin_acos", new[] { b.Node("Asin", "asin", new[] { unit }), b.Node("Acos", "acos", new[] { unit }) });
            var above = b.Node("Add", "above", new[] { b.Node("Abs", "abs", new[] { x }), b.Initializer("one", new[] { 1f }) });
            return b.Node("Add", "sum", new[] { b.Node("Add", "sum1", new[] { a, b.Node("Atanh", "atanh", new[] { unit }) }), b.Node("Acosh", "acosh", new[] { above }) });
        });
        yield return Case("IsNaN · IsInf · Xor (as float)", 13, FiveByFive, (b, x) =>
        {
            // log(x) is NaN below 0 and −∞ at 0 (Relu makes zeros); Xor of the two masks.
            var logs = b.Node("Log", "log", new[] { b.Node("Relu", "relu", new[] { x }) });
            var nan = b.Node("IsNaN", "isnan", new[] { b.Node("Log", "log_x", new[] { x }) });
            var inf = b.Node("IsInf", "isinf", new[] { logs }, new Dictionary<string, object> { ["detect_positive"] = 0L });
            return b.Node("Cast", "to_float", new[] { b.Node("Xor", "xor", new[] { nan, inf }) }, new Dictionary<string, object> { ["to"] = 1L });
        });
        yield return Case("GatherND, pairs of coordinates", 13, FiveByFive, (b, x) => b.Node("GatherND", "gathernd",
            new[] { x, b.Initializer("indices", new long[] { 1, 0, 0, -1, 1, 1 }, 3, 2) }));
        yield return Case("GatherND batch_dims 1", 13, FiveByFive, (b, x) => b.Node("GatherND", "gathernd",
            new[] { x, b.Initializer("indices", new long[] { 1, 4, 0, 2, 1, 1, 0, 0 }, 2, 2, 2) }, new Dictionary<string, object> { ["batch_dims"] = 1L }));
        yield return Case("ScatterND, two rows", 13, FiveByFive, (b, x) => b.Node("ScatterND", "scatternd",
            new[] { x, b.Initializer("indices", new long[] { 1, 0, 0, -1 }, 2, 2), b.Initializer("updates", ZooModels.Noise(50, 8), 2, 5, 5) }));
        yield return Case("OneHot on axis 1 of round(2x), depth 5", 13, FiveByFive, (b, x) => b.Node("OneHot", "onehot", new[]
        {
            b.Node("Cast", "to_long", new[] { b.Node("Round", "round", new[] { b.Node("Mul", "times2", new[] { x, b.Initializer("two", new[] { 2f }) }) }) },
                new Dictionary<string, object> { ["to"] = 7L }),
            b.Initializer("depth", new long[] { 5 }), b.Initializer("values", new[] { 0.5f, 2f }, 2),
        }, new Dictionary<string, object> { ["axis"] = 1L }));
        yield return Case("ThresholdedRelu alpha 0.4", 13, FiveByFive,
            (b, x) => b.Node("ThresholdedRelu", "trelu", new[] { x }, new Dictionary<string, object> { ["alpha"] = 0.4f }));
        yield return Case("Shrink bias 0.1, lambd 0.3", 13, FiveByFive,
            (b, x) => b.Node("Shrink", "shrink", new[] { x }, new Dictionary<string, object> { ["bias"] = 0.1f, ["lambd"] = 0.3f }));
        yield return Case("Size (as float)", 13, FiveByFive,
            (b, x) => b.Node("Cast", "to_float", new[] { b.Node("Size", "size", new[] { x }) }, new Dictionary<string, object> { ["to"] = 1L }));
        yield return Case("InstanceNormalization", 13, FiveByFive,
            (b, x) => b.Node("InstanceNormalization", "instnorm", new[] { x, b.Initializer("scale", new[] { 1.5f, 0.5f }, 2), b.Initializer("bias", new[] { 0.1f, -0.2f }, 2) }));
        yield return Case("ReduceProd axes [2, 3]", 13, FiveByFive, (b, x) => b.Node("ReduceProd", "prod", new[] { x }, new Dictionary<string, object> { ["axes"] = new long[] { 2, 3 } }));
        yield return Case("ReduceL1 axes [1]", 13, FiveByFive, (b, x) => b.Node("ReduceL1", "l1", new[] { x }, new Dictionary<string, object> { ["axes"] = new long[] { 1 } }));
        yield return Case("ReduceL2-18 axes input [−1], keepdims 0", 18, FiveByFive,
            (b, x) => b.Node("ReduceL2", "l2", new[] { x, b.Initializer("axes", new long[] { -1 }, 1) }, new Dictionary<string, object> { ["keepdims"] = 0L }));
        yield return Case("ReduceSumSquare, all axes", 13, FiveByFive, (b, x) => b.Node("ReduceSumSquare", "sumsq", new[] { x }));
        yield return Case("ReduceLogSum of |x|, axes [3]", 13, FiveByFive,
            (b, x) => b.Node("ReduceLogSum", "logsum", new[] { b.Node("Abs", "abs", new[] { x }) }, new Dictionary<string, object> { ["axes"] = new long[] { 3 } }));
        yield return Case("ReduceLogSumExp of 30·x, axes [2, 3], keepdims 0", 13, FiveByFive, (b, x) => b.Node("ReduceLogSumExp", "lse",
            new[] { b.Node("Mul", "times30", new[] { x, b.Initializer("thirty", new[] { 30f }) }) }, new Dictionary<string, object> { ["axes"] = new long[] { 2, 3 }, ["keepdims"] = 0L }));
    }

    [TestMethod]
    [DynamicData(nameof(Cases))]
    public void OneOpModel_ComputesWhatOnnxRuntimeComputes(string what, int opset, long[] inputDims, Func<OnnxGraphBuilder, string, string> body)
    {
        var model = Model(opset, inputDims, body);
        var shape = new[] { 2L }.Concat(inputDims).ToArray();
        var x = ZooModels.Noise((int)shape.Aggregate(1L, (a, b) => a * b), seed: 11);
        var (expected, expectedShape) = RunOnnxRuntime(model, x, shape);
        var (actual, actualShape) = RunTorchSharp(model, x, shape);
        CollectionAssert.AreEqual(expectedShape, actualShape, $"{what}: output shape");
        Assert.IsFalse(expected.Any(float.IsNaN) || actual.Any(float.IsNaN), $"{what}: finite outputs on both engines");
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
        AssertTwoOutputsAsOnnxRuntime(Google.Protobuf.MessageExtensions.ToByteArray(proto), ZooModels.Noise(100, seed: 4), "second", "Split");
    }

    [TestMethod]
    public void TopK_GivesEqualValuesInIndexOrder()
    {
        // round(2x) has many equal values: ONNX wants the lower index first among equals, largest and smallest.
        foreach (var largest in new[] { 1L, 0L })
        {
            var builder = new OnnxGraphBuilder();
            var x = builder.Input("x", 2, 5, 5);
            var rounded = builder.Node("Round", "round", new[] { builder.Node("Mul", "times2", new[] { x, builder.Initializer("two", new[] { 2f }) }) });
            var topk = builder.Node("TopK", "topk", new[] { rounded, builder.Initializer("k", new long[] { 3 }, 1) },
                new Dictionary<string, object> { ["axis"] = 2L, ["largest"] = largest });
            builder.Output("y", topk, OnnxGraphBuilder.ElementType.Float, 2, 3, 5);
            var proto = ModelProto.Parser.ParseFrom(builder.Build(13, new Dictionary<string, string>()));
            proto.Graph.Node.Single(n => n.OpType == "TopK").Output.Add("indices");
            proto.Graph.Output.Add(new ValueInfoProto { Name = "indices", Type = proto.Graph.Output[0].Type.Clone() });
            proto.Graph.Output[1].Type.TensorType.ElemType = (int)TensorProto.Types.DataType.Int64;
            AssertTwoOutputsAsOnnxRuntime(Google.Protobuf.MessageExtensions.ToByteArray(proto), ZooModels.Noise(100, seed: 9), "indices", $"TopK largest {largest}");
        }
    }

    // x [2, 2, 5, 5] → outputs "y" and `second` on both engines: same shapes and exactly the same values.
    private static void AssertTwoOutputsAsOnnxRuntime(byte[] model, float[] values, string second, string what)
    {
        var shape = new long[] { 2, 2, 5, 5 };
        using var input = OrtValue.CreateTensorValueFromMemory(values, shape);
        using var session = new InferenceSession(model);
        using var runOptions = new RunOptions();
        using var expected = session.Run(runOptions, new[] { "x" }, new[] { input }, new[] { "y", second });
        var graph = Import(model);
        using var _ = no_grad();
        using var xTensor = tensor(values, shape);
        var outputs = graph.Run(new[] { xTensor });
        Assert.HasCount(2, outputs, what);
        for (var k = 0; k < 2; k++)
        {
            CollectionAssert.AreEqual(expected[k].GetTensorTypeAndShape().Shape, outputs[k].shape, $"{what}, output {k}: shape");
            if (expected[k].GetTensorTypeAndShape().ElementDataType == Microsoft.ML.OnnxRuntime.Tensors.TensorElementType.Int64)
                CollectionAssert.AreEqual(expected[k].GetTensorDataAsSpan<long>().ToArray(), outputs[k].data<long>().ToArray(), $"{what}, output {k}");
            else
                CollectionAssert.AreEqual(expected[k].GetTensorDataAsSpan<float>().ToArray(), outputs[k].data<float>().ToArray(), $"{what}, output {k}");
        }
        foreach (var output in outputs) output.Dispose();
    }

    [TestMethod]
    public void PReluSlopes_InstanceAndGroupNormScales_AndEinsumOperands_Train()
    {
        var model = Model(18, FiveByFive, (b, x) =>
        {
            var norm = b.Node("InstanceNormalization", "instnorm", new[] { x, b.Initializer("scale", new[] { 1.5f, 0.5f }, 2), b.Initializer("bias", new[] { 0.1f, -0.2f }, 2) });
            norm = b.Node("GroupNormalization", "groupnorm", new[] { norm, b.Initializer("gscale", new[] { 1.2f, 0.8f }, 2), b.Initializer("gbias", new[] { 0.3f, -0.1f }, 2) },
                new Dictionary<string, object> { ["num_groups"] = 2L });
            var prelu = b.Node("PRelu", "prelu", new[] { norm, b.Initializer("slope", new[] { 0.25f, -0.5f }, 2, 1, 1) });
            return b.Node("Einsum", "einsum", new[] { prelu, b.Initializer("w", ZooModels.Noise(15, 5), 5, 3) }, new Dictionary<string, object> { ["equation"] = "...ij,jk->...ik" });
        });
        var graph = Import(model);
        using var x = tensor(ZooModels.Noise(100, seed: 2), new long[] { 2, 2, 5, 5 });
        using (var y = graph.forward(x))
        using (var loss = y.square().mean())
            loss.backward();
        var parameters = graph.named_parameters().ToList();
        TestContext.WriteLine(string.Join(", ", parameters.Select(p => $"{p.name} [{string.Join("x", p.parameter.shape)}]")));
        Assert.HasCount(6, parameters, "both normalisations' scales and biases, the slope and the Einsum weight are parameters");
        foreach (var (name, parameter) in parameters)
        {
            Assert.IsNotNull(parameter.grad, $"{name} gets a gradient");
            Assert.IsGreaterThan(0f, parameter.grad.abs().sum().item<float>(), $"{name}: a non-zero gradient");
        }
    }

    [TestMethod]
    public void FormsItCannotCompute_AreNamedWithTheNode()
    {
        var cases = new (string Why, string Node, string Expected, Func<OnnxGraphBuilder, string, string> Body)[]
        {
            ("a region of interest", "Node 'resize' (Resize)", "coordinate_transformation_mode tf_crop_and_resize",
                (b, x) => Resize(b, x, scales: new[] { 1f, 1f, 2f, 2f }, attributes: new() { ["coordinate_transformation_mode"] = "tf_crop_and_resize" })),
            ("two scales for four axes", "Node 'resize' (Resize)", "scales has 2 values for 4 axes", (b, x) => Resize(b, x, scales: new[] { 2f, 2f })),
            ("an unknown mode", "Node 'resize' (Resize)", "resize mode bicubic",
                (b, x) => Resize(b, x, scales: new[] { 1f, 1f, 2f, 2f }, attributes: new() { ["mode"] = "bicubic" })),
            ("groups that do not divide the channels", "Node 'groupnorm' (GroupNormalization)", "num_groups 3 for 2 channels",
                (b, x) => b.Node("GroupNormalization", "groupnorm", new[] { x, b.Initializer("scale", new[] { 1f, 1f, 1f }, 3), b.Initializer("bias", new float[3], 3) },
                    new Dictionary<string, object> { ["num_groups"] = 3L })),
            ("an Lp norm other than 1 or 2", "Node 'lpnorm' (LpNormalization)", "p = 3 (1 or 2)",
                (b, x) => b.Node("LpNormalization", "lpnorm", new[] { x }, new Dictionary<string, object> { ["p"] = 3L })),
            ("a scatter that adds", "Node 'scatter' (ScatterND)", "ScatterND with reduction add",
                (b, x) => b.Node("ScatterND", "scatter", new[] { x, b.Initializer("indices", new long[] { 1 }, 1, 1), b.Initializer("updates", new float[50], 1, 2, 5, 5) },
                    new Dictionary<string, object> { ["reduction"] = "add" })),
        };
        foreach (var (why, node, expected, body) in cases)
        {
            var graph = Import(Model(18, FiveByFive, body));
            using var x = zeros(2, 2, 5, 5);
            var e = Assert.ThrowsExactly<NotSupportedException>(() => graph.forward(x), why);
            StringAssert.Contains(e.Message, node, why);
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
