using MLNetQuant.Core;
using Onnx;
using TorchSharp;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace MLNetQuant.Graph;

/// <summary>The ONNX ops of the standard domain at opset 13 and later (what <see cref="OnnxImporter"/> leaves), each
/// computed with differentiable TorchSharp ops, so an imported graph trains. Semantics follow the ONNX operator
/// specification (integer Div truncates, Reshape's 0 copies a dimension, Resize's coordinate modes …); what has no
/// exact TorchSharp form is refused with the node named, never approximated.</summary>
internal static class OnnxOps
{
    /// <summary>Every op type the executor computes.</summary>
    public static IReadOnlySet<string> Supported { get; } = new HashSet<string>(StringComparer.Ordinal)
    {
        "Conv", "ConvTranspose", "Gemm", "MatMul", "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Exp", "Log", "Neg", "Abs",
        "Reciprocal", "Floor", "Ceil", "Erf", "Relu", "Clip", "LeakyRelu", "Sigmoid", "Tanh", "HardSigmoid", "HardSwish",
        "Softplus", "Gelu", "Softmax", "LogSoftmax", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
        "Flatten", "Reshape", "Transpose", "Concat", "Split", "Slice", "Squeeze", "Unsqueeze", "Shape", "Gather", "Expand",
        "Range", "Equal", "Less", "Greater", "LessOrEqual", "GreaterOrEqual", "Not", "And", "Or", "Where", "Cast",
        "ConstantOfShape", "Identity", "ReduceMean", "ReduceSum", "ReduceMax", "ReduceMin", "Resize", "Pad", "Sum", "Max",
        "Min", "Mean", "BatchNormalization", "LayerNormalization", "Tile",
        "PRelu", "Elu", "Selu", "Celu", "Mish", "Softsign", "Sin", "Cos", "Sign", "Round", "Mod", "CumSum", "Trilu", "ArgMax", "ArgMin",
        "Einsum", "InstanceNormalization", "ScatterElements", "ReduceProd", "ReduceL1", "ReduceL2", "ReduceSumSquare", "ReduceLogSum",
        "ReduceLogSumExp", "GroupNormalization", "LpNormalization", "LRN", "Hardmax", "GatherElements", "DepthToSpace",
        "SpaceToDepth", "NonZero", "Tan", "Asin", "Acos", "Atan", "Sinh", "Cosh", "Asinh", "Acosh", "Atanh", "IsNaN", "IsInf",
        "Xor", "GatherND", "ScatterND", "TopK", "OneHot", "ThresholdedRelu", "Shrink", "Size",
    };

    /// <summary>The ops that multiply their data input by a weight (input 1): what quantization gives integer kernels.</summary>
    public static IReadOnlySet<string> Weighted { get; } = new HashSet<string>(StringComparer.Ordinal) { "Conv", "ConvTranspose", "Gemm", "MatMul" };

    /// <summary>The output-channel axis of a weighted node's weight of rank <paramref name="weightRank"/> (per-channel
    /// grids run along it): Conv W[out, in/g, k…] 0; ConvTranspose W[in, out/g, k…] 1; Gemm 0 with transB, else 1;
    /// MatMul B[…, in, out] its last.</summary>
    public static int WeightChannelAxis(NodeProto node, int weightRank) => node.OpType switch
    {
        "Conv" => 0,
        "ConvTranspose" => 1,
        "Gemm" => GraphEditor.Int(node, "transB", 0) == 1 ? 0 : 1,
        _ => weightRank - 1,
    };

    /// <summary>Computes <paramref name="node"/> on <paramref name="inputs"/> (null for an omitted optional input).
    /// Every result is a tensor object of its own (never one of the inputs), so a caller may dispose inputs.</summary>
    /// <exception cref="NotSupportedException">An op or attribute the executor does not compute, named with the node.</exception>
    public static Tensor[] Run(NodeProto node, IReadOnlyList<Tensor?> inputs, int opset)
    {
        var op = new Call(node, inputs, opset);
        var outputs = op.Compute();
        for (var i = 0; i < outputs.Length; i++)
            if (inputs.Any(input => ReferenceEquals(input, outputs[i]))) outputs[i] = outputs[i].alias();
        return outputs;
    }

    /// <summary>One evaluation of one node.</summary>
    private readonly struct Call
    {
        private readonly NodeProto _node;
        private readonly IReadOnlyList<Tensor?> _inputs;
        private readonly int _opset;

        public Call(NodeProto node, IReadOnlyList<Tensor?> inputs, int opset)
        {
            _node = node;
            _inputs = inputs;
            _opset = opset;
        }

        private Tensor X => In(0);

        private Tensor In(int i) => Optional(i) ?? throw Refuse($"input {i} is missing");

        private Tensor? Optional(int i) => i < _inputs.Count ? _inputs[i] : null;

        private NotSupportedException Refuse(string why) =>
            new($"Node '{_node.Name}' ({_node.OpType}): {why}; the TorchSharp executor cannot train this graph.");

        private long Int(string name, long fallback) => GraphEditor.Int(_node, name, fallback);

        private float Float(string name, float fallback) => GraphEditor.Float(_node, name, fallback);

        private long[]? Ints(string name) => GraphEditor.Ints(_node, name);

        private string String(string name, string fallback) =>
            _node.Attribute.FirstOrDefault(a => a.Name == name) is { } a ? a.S.ToStringUtf8() : fallback;

        private static long[] Longs(Tensor t)
        {
            using var cpu = t.cpu();
            using var longs = cpu.to_type(ScalarType.Int64);
            return longs.data<long>().ToArray();
        }

        private static double Scalar(Tensor t)
        {
            using var cpu = t.cpu();
            using var doubles = cpu.to_type(ScalarType.Float64);
            return doubles.data<double>()[0];
        }

        private static long Axis(long axis, long rank) => axis < 0 ? axis + rank : axis;

        private static bool IsFloating(Tensor t) => t.dtype is ScalarType.Float32 or ScalarType.Float64 or ScalarType.Float16 or ScalarType.BFloat16;

        public Tensor[] Compute() => _node.OpType switch
        {
            "Conv" => One(Conv()),
            "ConvTranspose" => One(ConvTranspose()),
            "Gemm" => One(Gemm()),
            "MatMul" => One(X.matmul(In(1))),
            "Add" => One(X.add(In(1), Alpha(X, 1))),
            "Sub" => One(X.add(In(1), Alpha(X, -1))), // X + (−1)·Y: add with a held alpha (no temporary Scalar)
            "Mul" => One(X.mul(In(1))),
            "Div" => One(IsFloating(X) ? X.div(In(1)) : X.div(In(1), RoundingMode.trunc)),
            "Pow" => One(X.pow(In(1))),
            "Sqrt" => One(X.sqrt()),
            "Exp" => One(X.exp()),
            "Log" => One(X.log()),
            "Neg" => One(X.neg()),
            "Abs" => One(X.abs()),
            "Reciprocal" => One(X.reciprocal()),
            "Floor" => One(X.floor()),
            "Ceil" => One(X.ceil()),
            "Erf" => One(X.erf()),
            "Relu" => One(F.relu(X)),
            "Clip" => One(Clip()),
            "LeakyRelu" => One(F.leaky_relu(X, Float("alpha", 0.01f))),
            "Sigmoid" => One(X.sigmoid()),
            "Tanh" => One(X.tanh()),
            "HardSigmoid" => One(HardSigmoid(X, Float("alpha", 0.2f), Float("beta", 0.5f))),
            "HardSwish" => One(X.mul(HardSigmoid(X, 1f / 6, 0.5f))),
            "Softplus" => One(F.softplus(X)),
            "Gelu" => One(Gelu()),
            "Softmax" => One(X.softmax(Int("axis", -1))),
            "LogSoftmax" => One(X.log_softmax(Int("axis", -1))),
            "MaxPool" => One(Pool(max: true)),
            "AveragePool" => One(Pool(max: false)),
            "GlobalAveragePool" => One(X.mean(Enumerable.Range(2, (int)X.dim() - 2).Select(d => (long)d).ToArray(), keepdim: true)),
            "GlobalMaxPool" => One(X.amax(Enumerable.Range(2, (int)X.dim() - 2).Select(d => (long)d).ToArray(), keepdim: true)),
            "Flatten" => One(Flatten()),
            "Reshape" => One(Reshape()),
            "Transpose" => One(X.permute(Ints("perm") ?? Enumerable.Range(0, (int)X.dim()).Reverse().Select(d => (long)d).ToArray())),
            "Concat" => One(cat(_inputs.Where(t => t is not null).Select(t => t!).ToList(), Int("axis", 0))),
            "Split" => Split(),
            "Slice" => One(Slice()),
            "Squeeze" => One(Squeeze()),
            "Unsqueeze" => One(Unsqueeze()),
            "Shape" => One(Shape()),
            "Gather" => One(Gather()),
            "Expand" => One(X.expand(Broadcast(X.shape, Longs(In(1))))),
            "Range" => One(Range()),
            "Equal" => One(X.eq(In(1))),
            "Less" => One(X.lt(In(1))),
            "Greater" => One(X.gt(In(1))),
            "LessOrEqual" => One(X.le(In(1))),
            "GreaterOrEqual" => One(X.ge(In(1))),
            "Not" => One(X.logical_not()),
            "And" => One(X.logical_and(In(1))),
            "Or" => One(X.logical_or(In(1))),
            "Where" => One(where(X, In(1), In(2))),
            "Cast" => One(X.to_type(OnnxToTorch.ScalarType(Int("to", OnnxTensors.Float), $"Node '{_node.Name}' (Cast)"))),
            "ConstantOfShape" => One(ConstantOfShape()),
            "Identity" => One(X.alias()),
            "ReduceMean" or "ReduceSum" or "ReduceMax" or "ReduceMin" or "ReduceProd" or "ReduceL1" or "ReduceL2"
                or "ReduceSumSquare" or "ReduceLogSum" or "ReduceLogSumExp" => One(Reduce()),
            "Resize" => One(Resize()),
            "Pad" => One(Pad()),
            "Sum" or "Max" or "Min" or "Mean" => One(Variadic()),
            "BatchNormalization" => One(BatchNorm()),
            "LayerNormalization" => One(LayerNorm()),
            "Tile" => One(X.tile(Longs(In(1)))),
            "PRelu" => One(where(X.lt(CachedScalars.Of(0)), X.mul(In(1)), X)),
            "Elu" => One(Elu(Float("alpha", 1f))),
            "Selu" => One(Selu()),
            "Celu" => One(Celu()),
            "Mish" => One(X.mul(F.softplus(X).tanh())),
            "Softsign" => One(X.div(X.abs().add(CachedScalars.One, CachedScalars.One))),
            "Sin" => One(X.sin()),
            "Cos" => One(X.cos()),
            "Sign" => One(X.sign()),
            "Round" => One(X.round()), // half to even, as ONNX
            "Mod" => One(Int("fmod", 0) == 1 ? X.fmod(In(1)) : X.remainder(In(1))),
            "CumSum" => One(CumSum()),
            "Trilu" => One(Trilu()),
            "ArgMax" or "ArgMin" => One(ArgExtreme()),
            "Einsum" => One(einsum(String("equation", ""), _inputs.Select(t => t!).ToArray())),
            "InstanceNormalization" => One(InstanceNorm()),
            "ScatterElements" => One(ScatterElements()),
            "GroupNormalization" => One(GroupNorm()),
            "LpNormalization" => One(LpNorm()),
            "LRN" => One(Lrn()),
            "Hardmax" => One(Hardmax()),
            "GatherElements" => One(GatherElements()),
            "DepthToSpace" => One(DepthToSpace()),
            "SpaceToDepth" => One(SpaceToDepth()),
            "NonZero" => One(X.nonzero().t().contiguous()),
            "Tan" => One(X.tan()),
            "Asin" => One(X.asin()),
            "Acos" => One(X.acos()),
            "Atan" => One(X.atan()),
            "Sinh" => One(X.sinh()),
            "Cosh" => One(X.cosh()),
            "Asinh" => One(X.asinh()),
            "Acosh" => One(X.acosh()),
            "Atanh" => One(X.atanh()),
            "IsNaN" => One(X.isnan()),
            "IsInf" => One(IsInf()),
            "Xor" => One(X.logical_xor(In(1))),
            "GatherND" => One(GatherND()),
            "ScatterND" => One(ScatterND()),
            "TopK" => TopK(),
            "OneHot" => One(OneHot()),
            "ThresholdedRelu" => One(where(X.gt(CachedScalars.Of(Float("alpha", 1f))), X, zeros_like(X))),
            "Shrink" => One(Shrink()),
            "Size" => One(tensor(X.numel(), device: X.device)),
            _ => throw Refuse($"the op is not implemented (supported: {string.Join(", ", Supported.Order())})"),
        };

        private static Tensor[] One(Tensor t) => new[] { t };

        // add's alpha must be integral for integer tensors (shape arithmetic) and is a held Scalar either way.
        private static Scalar Alpha(Tensor t, long value) => IsFloating(t) ? CachedScalars.Of(value) : CachedScalars.OfInt(value);

        private static Tensor HardSigmoid(Tensor x, float alpha, float beta) =>
            x.mul(CachedScalars.Of(alpha)).add(CachedScalars.Of(beta), CachedScalars.One).clamp(CachedScalars.Of(0), CachedScalars.One);

        // Opset 20's Gelu: exact (erf) or its tanh approximation.
        private Tensor Gelu()
        {
            if (String("approximate", "none") != "tanh") return F.gelu(X);
            var cubic = X.pow(CachedScalars.Of(3)).mul(CachedScalars.Of(0.044715)).add(X, CachedScalars.One);
            var inner = cubic.mul(CachedScalars.Of(Math.Sqrt(2 / Math.PI))).tanh().add(CachedScalars.One, CachedScalars.One);
            return X.mul(inner).mul(CachedScalars.Of(0.5));
        }

        private Tensor Clip()
        {
            var min = Optional(1);
            var max = Optional(2);
            if (min is null && max is null) return X.alias();
            if (min is not null && max is not null) return X.clamp(min, max);
            return min is not null ? X.maximum(min) : X.minimum(max!);
        }

        private Tensor Gemm()
        {
            var a = Int("transA", 0) == 1 ? X.t() : X;
            var b = Int("transB", 0) == 1 ? In(1).t() : In(1);
            var y = a.matmul(b);
            var alpha = Float("alpha", 1f);
            if (alpha != 1f) y = y.mul(CachedScalars.Of(alpha));
            if (Optional(2) is { } c)
            {
                var beta = Float("beta", 1f);
                y = y.add(beta == 1f ? c : c.mul(CachedScalars.Of(beta)), CachedScalars.One);
            }
            return y;
        }

        // Explicit begin/end pads per spatial axis (ONNX pads: all begins, then all ends), with auto_pad resolved.
        private (long[] Begin, long[] End) SpatialPads(long[] kernel, long[] strides, long[] dilations, long[] inputSpatial)
        {
            var spatial = kernel.Length;
            var autoPad = String("auto_pad", "NOTSET");
            if (autoPad is "NOTSET" or "")
            {
                var pads = Ints("pads") ?? new long[2 * spatial];
                return (pads[..spatial], pads[spatial..]);
            }
            if (autoPad == "VALID") return (new long[spatial], new long[spatial]);
            var begin = new long[spatial];
            var end = new long[spatial];
            for (var d = 0; d < spatial; d++)
            {
                var output = (inputSpatial[d] + strides[d] - 1) / strides[d];
                var total = Math.Max(0, (output - 1) * strides[d] + (kernel[d] - 1) * dilations[d] + 1 - inputSpatial[d]);
                var small = total / 2;
                (begin[d], end[d]) = autoPad == "SAME_LOWER" ? (total - small, small) : (small, total - small);
            }
            return (begin, end);
        }

        // torch's pad list: last axis first, (begin, end) for each.
        private static long[] TorchPads(long[] begin, long[] end) =>
            Enumerable.Range(0, begin.Length).Reverse().SelectMany(d => new[] { begin[d], end[d] }).ToArray();

        private Tensor Conv()
        {
            var weight = In(1);
            var spatial = (int)weight.dim() - 2;
            var kernel = weight.shape[2..];
            var strides = Ints("strides") ?? Enumerable.Repeat(1L, spatial).ToArray();
            var dilations = Ints("dilations") ?? Enumerable.Repeat(1L, spatial).ToArray();
            var groups = Int("group", 1);
            var (begin, end) = SpatialPads(kernel, strides, dilations, X.shape[2..]);
            var x = X;
            if (!begin.SequenceEqual(end))
            {
                x = F.pad(x, TorchPads(begin, end));
                begin = new long[spatial];
            }
            return spatial switch
            {
                1 => F.conv1d(x, weight, Optional(2), strides[0], begin[0], dilations[0], groups),
                2 => F.conv2d(x, weight, Optional(2), strides, begin, dilations, groups),
                3 => F.conv3d(x, weight, Optional(2), strides, begin, dilations, groups),
                _ => throw Refuse($"a {spatial}-D convolution"),
            };
        }

        private Tensor ConvTranspose()
        {
            var weight = In(1);
            var spatial = (int)weight.dim() - 2;
            if (spatial != 2) throw Refuse("only 2-D transposed convolutions are computed");
            if (String("auto_pad", "NOTSET") is not ("NOTSET" or "")) throw Refuse("auto_pad on ConvTranspose; export with explicit pads");
            if (Ints("output_shape") is not null) throw Refuse("output_shape on ConvTranspose; export with pads and output_padding");
            var strides = Ints("strides") ?? new long[] { 1, 1 };
            var dilations = Ints("dilations") ?? new long[] { 1, 1 };
            var pads = Ints("pads") ?? new long[4];
            if (pads[0] != pads[2] || pads[1] != pads[3]) throw Refuse("asymmetric pads on ConvTranspose");
            var outputPadding = Ints("output_padding") ?? new long[2];
            return F.conv_transpose2d(X, weight, Optional(2), strides, pads[..2], outputPadding, dilations, Int("group", 1));
        }

        private Tensor Pool(bool max)
        {
            var kernel = Ints("kernel_shape") ?? throw Refuse("kernel_shape is missing");
            var spatial = kernel.Length;
            if (spatial != 2 && spatial != 1) throw Refuse($"{spatial}-D pooling");
            var strides = Ints("strides") ?? Enumerable.Repeat(1L, spatial).ToArray();
            var dilations = Ints("dilations") ?? Enumerable.Repeat(1L, spatial).ToArray();
            var ceil = Int("ceil_mode", 0) == 1;
            var (begin, end) = SpatialPads(kernel, strides, dilations, X.shape[2..]);
            var x = X;
            var includePad = Int("count_include_pad", 0) == 1;
            if (!begin.SequenceEqual(end))
            {
                if (!max && !includePad) throw Refuse("asymmetric pads on AveragePool with count_include_pad = 0");
                x = F.pad(x, TorchPads(begin, end), value: max ? double.NegativeInfinity : 0);
                begin = new long[spatial];
            }
            if (!max && dilations.Any(d => d != 1)) throw Refuse("dilated average pooling");
            if (spatial == 1)
                return max ? F.max_pool1d(x, kernel[0], strides[0], begin[0], dilations[0], ceil)
                    : F.avg_pool1d(x, kernel[0], strides[0], begin[0], ceil, includePad);
            return max ? F.max_pool2d(x, kernel, strides, begin, dilations, ceil)
                : F.avg_pool2d(x, kernel, strides, begin, ceil, includePad);
        }

        private Tensor Flatten()
        {
            var axis = Axis(Int("axis", 1), X.dim());
            var outer = X.shape[..(int)axis].Aggregate(1L, (a, b) => a * b);
            return X.reshape(outer, -1);
        }

        private Tensor Reshape()
        {
            var shape = Longs(In(1));
            var allowZero = Int("allowzero", 0) == 1;
            for (var d = 0; d < shape.Length; d++)
                if (shape[d] == 0 && !allowZero) shape[d] = X.shape[d];
            return X.reshape(shape);
        }

        private Tensor[] Split()
        {
            var axis = Axis(Int("axis", 0), X.dim());
            var size = X.shape[axis];
            var count = _node.Output.Count;
            var sizes = Optional(1) is { } split ? Longs(split) : Ints("split");
            if (sizes is null)
            {
                var chunk = (size + count - 1) / count;
                sizes = Enumerable.Range(0, count).Select(i => Math.Min(chunk, size - i * chunk)).ToArray();
            }
            return X.split(sizes, axis);
        }

        private Tensor Slice()
        {
            var starts = Longs(In(1));
            var ends = Longs(In(2));
            var axes = Optional(3) is { } a ? Longs(a) : Enumerable.Range(0, starts.Length).Select(i => (long)i).ToArray();
            var steps = Optional(4) is { } s ? Longs(s) : Enumerable.Repeat(1L, starts.Length).ToArray();
            var y = X;
            for (var i = 0; i < starts.Length; i++)
            {
                var axis = Axis(axes[i], X.dim());
                var size = X.shape[axis];
                if (steps[i] <= 0) throw Refuse("a Slice with a negative or zero step");
                long Clamp(long v) => Math.Clamp(v < 0 ? v + size : v, 0, size);
                var start = Clamp(starts[i]);
                var end = Clamp(ends[i]);
                y = y.slice(axis, start, Math.Max(start, end), steps[i]);
            }
            return ReferenceEquals(y, X) ? X.alias() : y;
        }

        private Tensor Squeeze()
        {
            var axes = Optional(1) is { } a ? Longs(a) : Ints("axes");
            if (axes is null)
                return X.reshape(X.shape.Where(d => d != 1).ToArray());
            var rank = X.dim();
            var drop = axes.Select(d => Axis(d, rank)).ToHashSet();
            return X.reshape(X.shape.Where((_, d) => !drop.Contains(d)).ToArray());
        }

        private Tensor Unsqueeze()
        {
            var axes = Optional(1) is { } a ? Longs(a) : Ints("axes") ?? throw Refuse("axes are missing");
            var rank = X.dim() + axes.Length;
            var inserted = axes.Select(d => Axis(d, rank)).ToHashSet();
            var shape = new List<long>();
            var source = 0;
            for (var d = 0; d < rank; d++) shape.Add(inserted.Contains(d) ? 1 : X.shape[source++]);
            return X.reshape(shape.ToArray());
        }

        private Tensor Shape()
        {
            var rank = X.dim();
            var start = Axis(Int("start", 0), rank);
            var end = _node.Attribute.Any(a => a.Name == "end") ? Axis(Int("end", rank), rank) : rank;
            start = Math.Clamp(start, 0, rank);
            end = Math.Clamp(end, start, rank);
            return tensor(X.shape[(int)start..(int)end], device: X.device);
        }

        private Tensor Gather()
        {
            var data = X;
            var axis = Axis(Int("axis", 0), data.dim());
            var indices = NonNegative(In(1), data.shape[axis]);
            var picked = data.index_select(axis, indices.flatten());
            var shape = data.shape[..(int)axis].Concat(indices.shape).Concat(data.shape[(int)(axis + 1)..]).ToArray();
            return picked.reshape(shape);
        }

        private static long[] Broadcast(long[] a, long[] b)
        {
            var rank = Math.Max(a.Length, b.Length);
            var shape = new long[rank];
            for (var i = 0; i < rank; i++)
            {
                var x = i < rank - a.Length ? 1 : a[i - (rank - a.Length)];
                var y = i < rank - b.Length ? 1 : b[i - (rank - b.Length)];
                shape[i] = x == 1 ? y : x;
            }
            return shape;
        }

        private Tensor Range()
        {
            var type = X.dtype;
            if (IsFloating(X)) return arange(Scalar(X), Scalar(In(1)), Scalar(In(2)), type, X.device);
            return arange((long)Scalar(X), (long)Scalar(In(1)), (long)Scalar(In(2)), type, X.device);
        }

        private Tensor ConstantOfShape()
        {
            var shape = Longs(X);
            var value = _node.Attribute.FirstOrDefault(a => a.Name == "value")?.T;
            if (value is null) return zeros(shape, ScalarType.Float32, X.device);
            using var single = OnnxToTorch.Tensor(value);
            using var onDevice = single.to(X.device);
            return onDevice.reshape(1).expand(shape).contiguous();
        }

        private Tensor Reduce()
        {
            var rank = X.dim();
            long[]? axes = _opset >= 18 || _node.OpType == "ReduceSum" ? (Optional(1) is { } a ? Longs(a) : null) : Ints("axes");
            var keep = Int("keepdims", 1) == 1;
            if (axes is null || axes.Length == 0)
            {
                if (Int("noop_with_empty_axes", 0) == 1) return X.alias();
                axes = Enumerable.Range(0, (int)rank).Select(d => (long)d).ToArray();
            }
            axes = axes.Select(d => Axis(d, rank)).ToArray();
            return _node.OpType switch
            {
                "ReduceMean" => X.mean(axes, keep),
                "ReduceSum" => X.sum(axes, keep),
                "ReduceMax" => X.amax(axes, keep),
                "ReduceMin" => X.amin(axes, keep),
                "ReduceProd" => axes.OrderDescending().Aggregate(X, (y, axis) => y.prod(axis, keep)),
                "ReduceL1" => X.abs().sum(axes, keep),
                "ReduceL2" => X.square().sum(axes, keep).sqrt(),
                "ReduceSumSquare" => X.square().sum(axes, keep),
                "ReduceLogSum" => X.sum(axes, keep).log(),
                _ => LogSumExp(axes, keep),
            };
        }

        // log Σ exp over several axes, shifted by the maximum so large inputs do not overflow.
        private Tensor LogSumExp(long[] axes, bool keep)
        {
            var max = X.amax(axes, keepdim: true).detach();
            var y = X.sub(max).exp().sum(axes, keepdim: true).log().add(max, CachedScalars.One);
            return keep ? y : y.reshape(y.shape.Where((_, d) => !axes.Contains(d)).ToArray());
        }

        // x above 0, α·(eˣ − 1) below.
        private Tensor Elu(float alpha) => where(X.gt(CachedScalars.Of(0)), X, X.expm1().mul(CachedScalars.Of(alpha)));

        private Tensor Selu() =>
            Elu(Float("alpha", 1.67326319217681884765625f)).mul(CachedScalars.Of(Float("gamma", 1.05070102214813232421875f)));

        private Tensor Celu()
        {
            var alpha = Float("alpha", 1f);
            var negative = X.div(CachedScalars.Of(alpha)).expm1().mul(CachedScalars.Of(alpha)).clamp_max(CachedScalars.Of(0));
            return X.clamp_min(CachedScalars.Of(0)).add(negative, CachedScalars.One);
        }

        // Running sums along the axis input; exclusive shifts them by one (a zero first), reverse runs from the end.
        private Tensor CumSum()
        {
            var axis = Axis((long)Scalar(In(1)), X.dim());
            var reverse = Int("reverse", 0) == 1;
            var x = reverse ? X.flip(axis) : X;
            var sums = x.cumsum(axis);
            if (Int("exclusive", 0) == 1)
            {
                var length = X.shape[axis];
                var first = zeros_like(x.narrow(axis, 0, 1));
                sums = cat(new[] { first, sums.narrow(axis, 0, length - 1) }, axis);
            }
            return reverse ? sums.flip(axis) : sums;
        }

        private Tensor Trilu()
        {
            var k = Optional(1) is { } kTensor ? (long)Scalar(kTensor) : 0;
            return Int("upper", 1) == 1 ? X.triu(k) : X.tril(k);
        }

        // The first extreme's index, or with select_last_index the last one's (the argument flipped along the axis).
        private Tensor ArgExtreme()
        {
            var axis = Axis(Int("axis", 0), X.dim());
            var keep = Int("keepdims", 1) == 1;
            var last = Int("select_last_index", 0) == 1;
            var x = last ? X.flip(axis) : X;
            var index = _node.OpType == "ArgMax" ? x.argmax(axis, keep) : x.argmin(axis, keep);
            return last ? index.neg().add(CachedScalars.OfInt(X.shape[axis] - 1), CachedScalars.OfInt(1)) : index;
        }

        private Tensor GatherElements()
        {
            var axis = Axis(Int("axis", 0), X.dim());
            return X.gather(axis, NonNegative(In(1), X.shape[axis]));
        }

        private Tensor ScatterElements()
        {
            if (String("reduction", "none") != "none") throw Refuse($"ScatterElements with reduction {String("reduction", "none")}");
            var axis = Axis(Int("axis", 0), X.dim());
            return X.scatter(axis, NonNegative(In(1), X.shape[axis]), In(2));
        }

        // A shape of ones for a rank-`rank` tensor but `length` at `axis`: what broadcasts a per-channel (or per-position)
        // vector along that axis.
        private static long[] AlongAxis(long rank, long axis, long length)
        {
            var shape = Enumerable.Repeat(1L, (int)rank).ToArray();
            shape[axis] = length;
            return shape;
        }

        // (x − mean) / √(variance + ε) over `axes` (the biased variance, as ONNX's normalizations take it).
        private Tensor Standardized(Tensor x, long[] axes)
        {
            var centered = x.sub(x.mean(axes, keepdim: true));
            var variance = centered.square().mean(axes, keepdim: true);
            return centered.div(variance.add(CachedScalars.Of(Float("epsilon", 1e-5f)), CachedScalars.One).sqrt());
        }

        // Indices as int64 with the negative ones counted from the end of an axis of `size`.
        private static Tensor NonNegative(Tensor indices, long size)
        {
            var longs = indices.to_type(ScalarType.Int64);
            return where(longs.lt(CachedScalars.OfInt(0)), longs.add(CachedScalars.OfInt(size), CachedScalars.OfInt(1)), longs);
        }

        // GatherND and ScatterND address slices of data by the last axis of indices (m coordinates): both fold the
        // batch axes and the m addressed axes into one row index of a [rows, slice…] view.
        private static Tensor RowIndex(Tensor indices, long[] dataShape, int batchDims)
        {
            var m = (int)indices.shape[^1];
            var batch = dataShape[..batchDims].Aggregate(1L, (a, b) => a * b);
            var addressed = dataShape[batchDims..(batchDims + m)];
            var flat = indices.to_type(ScalarType.Int64).reshape(batch, -1, m);
            var rows = addressed.Aggregate(1L, (a, b) => a * b);
            // Each batch's rows start at batch · rows; the coordinates then count in mixed radix.
            var row = arange(batch, ScalarType.Int64, indices.device).mul(CachedScalars.OfInt(rows)).unsqueeze(1).expand(batch, flat.shape[1]);
            var stride = rows;
            for (var j = 0; j < m; j++)
            {
                stride /= addressed[j];
                row = row.add(NonNegative(flat.select(2, j), addressed[j]), CachedScalars.OfInt(stride));
            }
            return row.flatten();
        }

        private Tensor GatherND()
        {
            var batchDims = (int)Int("batch_dims", 0);
            var indices = In(1);
            var m = (int)indices.shape[^1];
            var slice = X.shape[(batchDims + m)..];
            var rows = X.reshape(new[] { -1L }.Concat(slice).ToArray());
            var picked = rows.index_select(0, RowIndex(indices, X.shape, batchDims));
            return picked.reshape(indices.shape[..^1].Concat(slice).ToArray());
        }

        private Tensor ScatterND()
        {
            if (String("reduction", "none") != "none") throw Refuse($"ScatterND with reduction {String("reduction", "none")}");
            var indices = In(1);
            var slice = X.shape[(int)indices.shape[^1]..];
            var rows = X.reshape(new[] { -1L }.Concat(slice).ToArray());
            var updates = In(2).reshape(new[] { -1L }.Concat(slice).ToArray());
            return rows.index_copy(0, RowIndex(indices, X.shape, 0), updates).reshape(X.shape);
        }

        // The k largest (or smallest) along the axis, equal values in index order (a stable sort), as ONNX asks.
        private Tensor[] TopK()
        {
            var axis = Axis(Int("axis", -1), X.dim());
            var k = (long)Scalar(In(1));
            var (values, indices) = X.sort(axis, descending: Int("largest", 1) == 1, stable: true);
            return new[] { values.narrow(axis, 0, k), indices.narrow(axis, 0, k) };
        }

        // on where the index (negative counted from depth) names the position along the new axis, off elsewhere.
        private Tensor OneHot()
        {
            var depth = (long)Scalar(In(1));
            var values = In(2);
            var rank = X.dim() + 1;
            var axis = Axis(Int("axis", -1), rank);
            var index = NonNegative(X, depth).unsqueeze(axis);
            using var positions = arange(depth, ScalarType.Int64, X.device).reshape(AlongAxis(rank, axis, depth));
            return where(index.eq(positions), values[1], values[0]);
        }

        private Tensor Shrink()
        {
            var bias = CachedScalars.Of(Float("bias", 0f));
            var lambd = Float("lambd", 0.5f);
            var shrunk = where(X.lt(CachedScalars.Of(-lambd)), X.add(bias, CachedScalars.One), zeros_like(X));
            return where(X.gt(CachedScalars.Of(lambd)), X.sub(bias), shrunk);
        }

        // Normalised over each group of channels; opset 18's scale and bias hold one value per group, opset 21's one
        // per channel.
        private Tensor GroupNorm()
        {
            var groups = Int("num_groups", 0);
            var channels = X.shape[1];
            if (groups <= 0 || channels % groups != 0) throw Refuse($"num_groups {groups} for {channels} channels");
            var normalized = Standardized(X.reshape(X.shape[0], groups, -1), new long[] { 2 }).reshape(X.shape);
            var channelShape = AlongAxis(X.dim(), 1, channels);
            Tensor PerChannel(Tensor t) => (t.numel() == groups && groups != channels ? t.repeat_interleave(channels / groups) : t).reshape(channelShape);
            return normalized.mul(PerChannel(In(1))).add(PerChannel(In(2)), CachedScalars.One);
        }

        private Tensor LpNorm()
        {
            var axis = Axis(Int("axis", -1), X.dim());
            var p = Int("p", 2);
            var norm = p switch
            {
                1 => X.abs().sum(new[] { axis }, keepdim: true),
                2 => X.square().sum(new[] { axis }, keepdim: true).sqrt(),
                _ => throw Refuse($"p = {p} (1 or 2)"),
            };
            return X.div(norm);
        }

        // x / (bias + α/size · Σ x² over the channel window [c − ⌊(size−1)/2⌋, c + ⌈(size−1)/2⌉])^β.
        private Tensor Lrn()
        {
            var size = Int("size", 0);
            if (size <= 0) throw Refuse("size is missing");
            var channels = X.shape[1];
            var before = (size - 1) / 2;
            var after = size - 1 - before;
            // Zeros before and after the channels: torch pads from axis 1 on, as the Pad op does.
            var begin = new long[X.dim() - 1];
            var end = new long[X.dim() - 1];
            (begin[0], end[0]) = (before, after);
            var padded = F.pad(X.square(), TorchPads(begin, end), PaddingModes.Constant, 0);
            var sum = padded.narrow(1, 0, channels);
            for (var k = 1; k < size; k++) sum = sum.add(padded.narrow(1, k, channels), CachedScalars.One);
            var denominator = sum.mul(CachedScalars.Of(Float("alpha", 1e-4f) / size)).add(CachedScalars.Of(Float("bias", 1f)), CachedScalars.One)
                .pow(CachedScalars.Of(Float("beta", 0.75f)));
            return X.div(denominator);
        }

        // One at the first maximum along the axis, zero elsewhere.
        private Tensor Hardmax()
        {
            var axis = Axis(Int("axis", -1), X.dim());
            var first = X.argmax(axis, keepdim: true);
            return zeros_like(X).scatter(axis, first, ones_like(first, X.dtype));
        }

        private Tensor DepthToSpace()
        {
            var b = Int("blocksize", 0);
            var (n, c, h, w) = (X.shape[0], X.shape[1], X.shape[2], X.shape[3]);
            var columnFirst = String("mode", "DCR") == "CRD";
            var split = columnFirst ? X.reshape(n, c / (b * b), b, b, h, w) : X.reshape(n, b, b, c / (b * b), h, w);
            var moved = columnFirst ? split.permute(0, 1, 4, 2, 5, 3) : split.permute(0, 3, 4, 1, 5, 2);
            return moved.reshape(n, c / (b * b), h * b, w * b);
        }

        private Tensor SpaceToDepth()
        {
            var b = Int("blocksize", 0);
            var (n, c, h, w) = (X.shape[0], X.shape[1], X.shape[2], X.shape[3]);
            return X.reshape(n, c, h / b, b, w / b, b).permute(0, 3, 5, 1, 2, 4).reshape(n, c * b * b, h / b, w / b);
        }

        private Tensor IsInf()
        {
            var negative = Int("detect_negative", 1) == 1;
            var positive = Int("detect_positive", 1) == 1;
            if (negative && positive) return X.isinf();
            if (negative) return X.isneginf();
            return positive ? X.isposinf() : zeros_like(X, ScalarType.Bool);
        }

        // Per sample and channel: (x − mean) / √(variance + ε) over the spatial axes, then the channel's scale and shift.
        private Tensor InstanceNorm()
        {
            var spatial = Enumerable.Range(2, (int)X.dim() - 2).Select(d => (long)d).ToArray();
            var channelShape = AlongAxis(X.dim(), 1, X.shape[1]);
            var normalized = Standardized(X, spatial);
            return normalized.mul(In(1).reshape(channelShape)).add(In(2).reshape(channelShape), CachedScalars.One);
        }

        // Axis by axis, with ONNX Runtime's taps (ResizeSampling): gathers weighed and summed, so gradients flow.
        private Tensor Resize()
        {
            var rank = (int)X.dim();
            var scales = Optional(2) is { } s && s.numel() > 0 ? Floats(s) : null;
            var sizes = Optional(3) is { } z && z.numel() > 0 ? Longs(z) : null;
            var policy = String("keep_aspect_ratio_policy", "stretch");
            var (outputShape, axisScales) = ResizeSampling.Geometry(X.shape, scales, sizes, Ints("axes"), policy, Refuse);
            var mode = new ResizeMode(String("mode", "nearest"), String("coordinate_transformation_mode", "half_pixel"),
                String("nearest_mode", "round_prefer_floor"), Float("cubic_coeff_a", -0.75f), Int("exclude_outside", 0) == 1,
                Int("antialias", 0) == 1);
            if (mode.Interpolation != "nearest" && !IsFloating(X)) throw Refuse($"{mode.Interpolation} resize of {X.dtype} data");
            var stretchedToSizes = sizes is not null && policy == "stretch";
            if (FusedBilinear(mode, outputShape, axisScales, stretchedToSizes) is { } fused) return fused;
            var y = X;
            for (var axis = 0; axis < rank; axis++)
            {
                // An axis kept at scale 1 maps every position to itself (tf_half_pixel_for_nn shifts by half a pixel).
                if (outputShape[axis] == X.shape[axis] && axisScales[axis] == 1f && mode.Transform != "tf_half_pixel_for_nn") continue;
                y = Sample(y, axis, ResizeSampling.For(X.shape[axis], outputShape[axis], axisScales[axis], mode, Refuse));
            }
            return ReferenceEquals(y, X) ? X.alias() : y;
        }

        // TorchSharp's bilinear kernel (forward and backward 2–4× faster than the gathers on large maps) where it computes
        // ONNX Runtime's coordinates: the two last axes of a 4-D tensor, half_pixel (pytorch_half_pixel past one pixel) with
        // the scale ONNX uses — output/input for stretched sizes, else the given scale, whose floor must give the same
        // output size — or align_corners. Null elsewhere: the gathers compute it.
        private Tensor? FusedBilinear(ResizeMode mode, long[] outputShape, float[] axisScales, bool stretchedToSizes)
        {
            if (mode.Interpolation != "linear" || mode.Antialias || X.dim() != 4) return null;
            if (outputShape[0] != X.shape[0] || outputShape[1] != X.shape[1] || axisScales[0] != 1f || axisScales[1] != 1f) return null;
            var spatial = outputShape[2..];
            if (mode.Transform == "align_corners" || (stretchedToSizes && mode.Transform is "half_pixel" or "pytorch_half_pixel" && spatial.All(d => d > 1)))
                return F.interpolate(X, spatial, mode: InterpolationMode.Bilinear, align_corners: mode.Transform == "align_corners");
            if (stretchedToSizes || mode.Transform is not ("half_pixel" or "pytorch_half_pixel") || spatial.Any(d => d <= 1)) return null;
            var factors = new double[] { axisScales[2], axisScales[3] };
            if ((long)Math.Floor(X.shape[2] * factors[0]) != spatial[0] || (long)Math.Floor(X.shape[3] * factors[1]) != spatial[1]) return null;
            return F.interpolate(X, scale_factor: factors, mode: InterpolationMode.Bilinear, align_corners: false, recompute_scale_factor: false);
        }

        private static Tensor Sample(Tensor x, int axis, ResizeSampling.Taps taps)
        {
            if (taps.Weights is null)
            {
                using var index = tensor(taps.Indices[0], device: x.device);
                return x.index_select(axis, index);
            }
            var weightShape = AlongAxis(x.dim(), axis, taps.Indices[0].Length);
            Tensor? sum = null;
            for (var t = 0; t < taps.Indices.Length; t++)
            {
                using var index = tensor(taps.Indices[t], device: x.device);
                using var weights = tensor(taps.Weights[t], device: x.device).to_type(x.dtype).reshape(weightShape);
                var term = x.index_select(axis, index).mul(weights);
                sum = sum is null ? term : sum.add(term, CachedScalars.One);
            }
            return sum!;
        }

        private static float[] Floats(Tensor t)
        {
            using var cpu = t.cpu();
            using var floats = cpu.to_type(ScalarType.Float32);
            return floats.data<float>().ToArray();
        }

        private Tensor Pad()
        {
            var pads = Longs(In(1));
            var rank = (int)X.dim();
            // Opset 18's axes input: pads holds the begins then the ends of the listed axes only.
            var axes = Optional(3) is { } a ? Longs(a).Select(d => (int)Axis(d, rank)).ToArray() : Enumerable.Range(0, rank).ToArray();
            if (pads.Length != 2 * axes.Length) throw Refuse($"{pads.Length} pads for {axes.Length} axes");
            var begin = new long[rank];
            var end = new long[rank];
            for (var i = 0; i < axes.Length; i++)
            {
                begin[axes[i]] = pads[i];
                end[axes[i]] = pads[axes.Length + i];
            }
            var mode = String("mode", "constant");
            var value = Optional(2) is { } constant && constant.numel() > 0 ? Scalar(constant) : 0;
            var first = Array.FindIndex(Enumerable.Range(0, rank).Select(d => begin[d] != 0 || end[d] != 0).ToArray(), p => p);
            if (first < 0) return X.alias();
            var torchPads = TorchPads(begin[first..], end[first..]);
            return mode switch
            {
                "constant" => F.pad(X, torchPads, PaddingModes.Constant, value),
                "reflect" => F.pad(X, torchPads, PaddingModes.Reflect),
                "edge" => F.pad(X, torchPads, PaddingModes.Replicate),
                _ => throw Refuse($"pad mode {mode}"),
            };
        }

        private Tensor Variadic()
        {
            var values = _inputs.Where(t => t is not null).Select(t => t!).ToList();
            var result = values[0].alias();
            for (var i = 1; i < values.Count; i++)
                result = _node.OpType switch
                {
                    "Sum" or "Mean" => result.add(values[i], Alpha(result, 1)),
                    "Max" => result.maximum(values[i]),
                    _ => result.minimum(values[i]),
                };
            return _node.OpType == "Mean" ? result.div(CachedScalars.Of(values.Count)) : result;
        }

        private Tensor BatchNorm()
        {
            if (_node.Output.Count > 1) throw Refuse("BatchNormalization in training mode (several outputs)");
            return F.batch_norm(X, In(3), In(4), In(1), In(2), training: false, eps: Float("epsilon", 1e-5f));
        }

        private Tensor LayerNorm()
        {
            var axis = Axis(Int("axis", -1), X.dim());
            if (_node.Output.Count > 1) throw Refuse("LayerNormalization with mean and inverse-deviation outputs");
            return F.layer_norm(X, X.shape[(int)axis..], In(1), Optional(2), Float("epsilon", 1e-5f));
        }
    }
}
