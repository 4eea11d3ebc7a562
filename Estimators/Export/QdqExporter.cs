using MLNetQuant.Algorithms;
using MLNetQuant.Core;
using MLNetQuant.Modeling;
using MLNetQuant.Onnx;
using TorchSharp.Modules;
using static TorchSharp.torch;
using ElementType = MLNetQuant.Onnx.OnnxGraphBuilder.ElementType;

namespace MLNetQuant.Export;

/// <summary>Writes a <see cref="QuantizedNetwork"/> as a QDQ ONNX model (opset 13) that ONNX Runtime fuses into integer
/// kernels: quantized weights as int8/uint8 initializers + DequantizeLinear (per-channel on axis 0 for Conv and
/// Gemm), quantized activations as QuantizeLinear→DequantizeLinear pairs, bias int32 with scale s_in·s_w where the
/// layer's input is quantized, BatchNorm folded (also after quantization, for DoReFa and BNN), and the other layers as
/// their ONNX ops. An activation's Q/DQ pair is also repeated over the ReLU/MaxPool/Flatten/Dropout layers that lead
/// to it from the previous conv or linear layer — exact, since those commute with a monotonic quantizer whose grid
/// holds 0 — so the conv or linear layer's output meets a QuantizeLinear directly and ORT can fuse it.</summary>
internal sealed class QdqExporter
{
    private readonly QuantizedNetwork _network;
    private readonly OnnxGraphBuilder _onnx = new();
    private readonly QdqEmitter _qdq;
    private readonly Dictionary<string, QuantizedLayer> _layers;
    private readonly HashSet<string> _foldedBatchNorms;
    private readonly List<QuantizedTensorReport> _report = new();
    private readonly QuantContext _eval = new(Training: false, Calibrating: false, Step: long.MaxValue);

    private QdqExporter(QuantizedNetwork network)
    {
        _network = network;
        _qdq = new QdqEmitter(_onnx);
        _layers = network.Layers.ToDictionary(l => l.Name, StringComparer.Ordinal);
        _foldedBatchNorms = network.Layers.Where(l => l.FoldedBatchNormName is not null).Select(l => l.FoldedBatchNormName!).ToHashSet();
    }

    /// <summary>Exports <paramref name="network"/> (evaluated in eval mode) with input column
    /// <paramref name="featureColumn"/> (a float vector of the product of <paramref name="inputShape"/>) and output
    /// <paramref name="scoreColumn"/>: softmax probabilities for classifiers, the raw output for regressors.</summary>
    public static ExportedModel Export(QuantizedNetwork network, long[] inputShape, long outputs, bool classification,
        string featureColumn, string scoreColumn)
    {
        if (network.Model is Graph.OnnxGraphModule graph)
            return TrainedGraphExporter.Export(network, graph, inputShape, outputs, classification, featureColumn, scoreColumn);
        var exporter = new QdqExporter(network);
        network.eval();
        using var _ = no_grad();
        using var scope = NewDisposeScope();
        return exporter.Write(inputShape, outputs, classification, featureColumn, scoreColumn);
    }

    private ExportedModel Write(long[] inputShape, long outputs, bool classification, string featureColumn, string scoreColumn)
    {
        var features = inputShape.Aggregate(1L, (a, b) => a * b);
        var input = _onnx.Input(featureColumn, features);
        var shape = _onnx.Initializer("input_shape", new[] { -1L }.Concat(inputShape).ToArray(), inputShape.Length + 1);
        var x = new Value(_onnx.Node("Reshape", "input", new[] { input, shape }), null);
        var y = Walk(_network.Model, "", x);
        var score = classification ? _onnx.Node("Softmax", "softmax", new[] { y.Name }, new Dictionary<string, object> { ["axis"] = 1L }) : y.Name;
        _onnx.Output(scoreColumn, score, ElementType.Float, outputs);
        if (classification)
            _onnx.Output(PredictedIndexColumn, _onnx.Node("ArgMax", "argmax", new[] { y.Name }, new Dictionary<string, object> { ["axis"] = 1L, ["keepdims"] = 0L }),
                ElementType.Int64);
        var report = new QuantizationReport(QuantizationReport.CurrentFormatVersion, _network.AlgorithmName, _report);
        var bytes = _onnx.Build(opset: 13, new Dictionary<string, string> { [QuantizationReport.MetadataKey] = report.ToJson() });
        return new ExportedModel(bytes, report);
    }

    /// <summary>The ONNX output holding each row's arg-max class index (int64), for ONNX Runtime users; ML.NET's
    /// OnnxTransformer can only surface it as a 1-slot vector, so the transformer does not map it.</summary>
    public const string PredictedIndexColumn = "PredictedLabelIndex";

    /// <summary>A tensor in the graph, with the quantization parameters it was last dequantized with (if any).</summary>
    private sealed record Value(string Name, QParams? Grid);

    private Value Walk(nn.Module module, string name, Value x)
    {
        switch (module)
        {
            case Sequential:
                return WalkSequential(module, name, x);
            case ResidualBlock block:
                var branch = Walk(block.Branch, Join(name, "branch"), x);
                var shortcut = Walk(block.Shortcut, Join(name, "shortcut"), x);
                return new Value(_onnx.Node("Add", Join(name, "add"), new[] { branch.Name, shortcut.Name }), null);
            default:
                return Leaf(module, name, x, batchNorm: null);
        }
    }

    private Value WalkSequential(nn.Module container, string name, Value x)
    {
        var children = container.named_children().Select(c => (Name: Join(name, c.name), Module: c.module)).ToList();
        var requantizeAfter = PlanPropagation(children);
        for (var i = 0; i < children.Count; i++)
        {
            var (childName, child) = children[i];
            if (_foldedBatchNorms.Contains(childName)) continue;
            BatchNorm? postFold = null;
            if (child is Convolution or Linear && i + 1 < children.Count && children[i + 1].Module is BatchNorm bn &&
                !_foldedBatchNorms.Contains(children[i + 1].Name))
            {
                postFold = bn;
                i++;
            }
            x = child is Sequential or ResidualBlock ? Walk(child, childName, x) : Leaf(child, childName, x, postFold);
            if (requantizeAfter.TryGetValue(i, out var grid)) x = QuantizeDequantize(x, grid, $"{childName}.requant");
        }
        return x;
    }

    // For each child whose input is quantized, the same grid is applied after the chain of grid-preserving layers
    // (ReLU, MaxPool, Flatten, Dropout, Identity) before it and after the layer that starts the chain. Exact: these
    // layers commute with a monotonic quantizer whose grid holds 0 (ReLU of a dequantized negative is 0 = Q(0)).
    private Dictionary<int, QParams> PlanPropagation(List<(string Name, nn.Module Module)> children)
    {
        var plan = new Dictionary<int, QParams>();
        for (var i = 0; i < children.Count; i++)
        {
            if (!_layers.TryGetValue(children[i].Name, out var layer) || layer.Get(QuantType.Input) is not { } quantizer) continue;
            var grid = quantizer.CurrentQParams();
            if (grid is null || grid.Spec.Scheme.IsPerChannel()) continue;
            for (var j = i - 1; j >= 0; j--)
            {
                if (_foldedBatchNorms.Contains(children[j].Name)) continue;
                plan[j] = grid;
                if (children[j].Module is not (ReLU or MaxPool2d or Flatten or Dropout or Identity)) break;
            }
        }
        return plan;
    }

    private Value Leaf(nn.Module module, string name, Value x, BatchNorm? batchNorm)
    {
        var layer = _layers.GetValueOrDefault(name);
        if (layer?.Get(QuantType.Input) is { } inputQuantizer)
            x = QuantizeDequantize(x, Report(layer, QuantType.Input, inputQuantizer), $"{name}.input");
        var y = module is Convolution or Linear ? Weighted(module, name, layer, x, batchNorm) : Op(module, name, x);
        if (layer?.Get(QuantType.Output) is { } outputQuantizer)
        {
            var grid = Report(layer, QuantType.Output, outputQuantizer);
            y = outputQuantizer is BinaryActivationQuantizer ? Binarize(y, $"{name}.output") : QuantizeDequantize(y, grid, $"{name}.output");
        }
        return y;
    }

    private Value Op(nn.Module module, string name, Value x)
    {
        string Unary(string op, Dictionary<string, object>? attributes = null) => _onnx.Node(op, name, new[] { x.Name }, attributes);
        var output = module switch
        {
            ReLU => Unary("Relu"),
            ReLU6 => _qdq.Clip(name, x.Name, 0, 6),
            Hardtanh h => _qdq.Clip(name, x.Name, (float)h.min_val, (float)h.max_val),
            LeakyReLU l => Unary("LeakyRelu", new() { ["alpha"] = (float)l.negative_slope }),
            Sigmoid => Unary("Sigmoid"),
            Tanh => Unary("Tanh"),
            MaxPool2d p => Unary("MaxPool", Pooling(p.kernel_size!, p.stride, p.padding, p.dilation, p.ceil_mode)),
            AvgPool2d p => Unary("AveragePool", AveragePooling(p)),
            AdaptiveAvgPool2d a => GlobalAveragePool(a, name, x.Name),
            Flatten f => Unary("Flatten", new() { ["axis"] = FlattenAxis(f, name) }),
            Dropout or Identity => Unary("Identity"),
            BatchNorm bn => BatchNormalization(bn, name, x.Name),
            _ => throw new NotSupportedException($"Module '{name}' ({module.GetType().Name}) has no ONNX export."),
        };
        // The output is a float tensor in the graph even where its values stay on the input's grid: a later layer that
        // quantizes it must emit its own Q/DQ so ORT sees DequantizeLinear right before it.
        return new Value(output, null);
    }

    private Value Weighted(nn.Module module, string name, QuantizedLayer? layer, Value x, BatchNorm? postFold)
    {
        var (weight, bias) = WeightedLayer.ParametersOf(module);
        var foldedBatchNorm = layer?.BatchNorm;
        Tensor effective = weight.detach();
        Tensor? effectiveBias = bias?.detach();
        if (foldedBatchNorm is not null)
        {
            var factor = WeightedLayer.FoldFactor(foldedBatchNorm);
            effective = effective.mul(WeightedLayer.AlongAxis(factor, effective.dim(), 0));
            effectiveBias = WeightedLayer.FoldedBias(foldedBatchNorm, factor, effectiveBias);
        }
        var channels = effective.shape[0];
        string weightName;
        QParams? weightGrid = null;
        Tensor? postFactor = null;
        if (postFold is not null)
        {
            postFactor = WeightedLayer.FoldFactor(postFold);
            effectiveBias = WeightedLayer.FoldedBias(postFold, postFactor, effectiveBias);
        }
        if (layer?.Get(QuantType.Weight) is { } weightQuantizer)
        {
            var quantized = weightQuantizer.Quantize(effective, _eval);
            var grid = weightQuantizer.CurrentQParams() ?? throw new InvalidOperationException($"Layer '{name}' has no weight grid.");
            _report.Add(Describe(layer, QuantType.Weight, grid));
            var (ints, scales, zeroPoints, signed) = WeightGrid.Integers(name, quantized, grid, axis: 0);
            if (postFactor is not null)
            {
                // Folding after quantization (DoReFa, BNN): the per-channel factor joins the scale; a negative factor
                // flips that channel's integers.
                var factors = postFactor.cpu().data<float>().ToArray();
                for (var c = 0; c < channels; c++)
                {
                    scales[c] *= Math.Abs(factors[c]);
                    if (factors[c] < 0)
                        for (var k = 0; k < ints.Length / channels; k++) ints[c * (ints.Length / channels) + k] = -ints[c * (ints.Length / channels) + k];
                }
                if (zeroPoints.Any(z => z != 0)) throw new NotSupportedException($"Layer '{name}': cannot fold a BN into an affine weight grid.");
            }
            weightName = _qdq.DequantizedWeight(name, ints, scales, zeroPoints, signed, effective.shape, axis: 0);
            var spec = grid.Spec;
            if (scales.Length > 1 && !spec.Scheme.IsPerChannel())
                spec = new QuantSpec(spec.Dtype, spec.Bits, spec.Scheme.IsSymmetric() ? QuantScheme.PerChannelSymmetric : QuantScheme.PerChannelAffine,
                    spec.RangeKind, channelAxis: 0);
            weightGrid = new QParams(tensor(scales), tensor(zeroPoints), spec);
        }
        else
        {
            if (postFactor is not null) effective = effective.mul(WeightedLayer.AlongAxis(postFactor, effective.dim(), 0));
            weightName = _onnx.Initializer($"{name}.weight", Floats(effective), effective.shape);
        }

        var inputs = new List<string> { x.Name, weightName };
        if (effectiveBias is not null) inputs.Add(Bias(name, Floats(effectiveBias), x.Grid, weightGrid));
        var output = module switch
        {
            Linear => _onnx.Node("Gemm", name, inputs, new Dictionary<string, object> { ["transB"] = 1L }),
            Convolution conv => _onnx.Node("Conv", name, inputs, ConvAttributes(conv)),
            _ => throw new NotSupportedException($"Module '{name}' has no ONNX export."),
        };
        return new Value(output, null);
    }

    // int32 bias with scale s_in·s_w when both the input and the weight are quantized (what ORT's integer kernels
    // take); float otherwise.
    private string Bias(string name, float[] bias, QParams? inputGrid, QParams? weightGrid) =>
        inputGrid is null || weightGrid is null || inputGrid.Spec.Scheme.IsPerChannel()
            ? _onnx.Initializer($"{name}.bias", bias, bias.Length)
            : _qdq.Int32Bias(name, bias, inputGrid.ScaleValues()[0], weightGrid.ScaleValues());

    private Value QuantizeDequantize(Value x, QParams grid, string name)
    {
        if (x.Grid is not null && SameGrid(x.Grid, grid)) return x;
        if (grid.Spec.Scheme.IsPerChannel())
            throw new NotSupportedException($"'{name}': per-channel activation grids are not exported (ORT fuses per-tensor activations only).");
        var dq = _qdq.QuantizeDequantize(x.Name, grid.ScaleValues()[0], grid.ZeroPointValues()[0], grid.Spec.Range,
            grid.Spec.Dtype == QuantDtype.Int, name);
        return new Value(dq, grid);
    }

    // BNN's sign with 0 → +1 is not a rounding QuantizeLinear can express (it would send (−½, ½) to 0): emit
    // Where(x ≥ 0, 1, −1).
    private Value Binarize(Value x, string name)
    {
        var zero = _onnx.Initializer($"{name}.zero", new[] { 0f });
        var plus = _onnx.Initializer($"{name}.plus_one", new[] { 1f });
        var minus = _onnx.Initializer($"{name}.minus_one", new[] { -1f });
        var nonNegative = _onnx.Node("GreaterOrEqual", $"{name}.non_negative", new[] { x.Name, zero });
        return new Value(_onnx.Node("Where", $"{name}.sign", new[] { nonNegative, plus, minus }), null);
    }

    private static bool SameGrid(QParams a, QParams b) =>
        a.Spec.Dtype == b.Spec.Dtype && a.Spec.Range == b.Spec.Range &&
        a.ScaleValues().SequenceEqual(b.ScaleValues()) && a.ZeroPointValues().SequenceEqual(b.ZeroPointValues());

    private QParams Report(QuantizedLayer layer, QuantType type, TensorQuantizer quantizer)
    {
        var grid = quantizer.CurrentQParams() ?? throw new InvalidOperationException(
            $"The {type} of layer '{layer.Name}' has no quantization parameters yet; train or calibrate before exporting.");
        _report.Add(Describe(layer, type, grid));
        return grid;
    }

    private static QuantizedTensorReport Describe(QuantizedLayer layer, QuantType type, QParams grid) =>
        new(layer.Name, layer.OpType, type, layer.SpecOf(type).Bits, grid.Spec.Scheme, grid.Spec.Dtype, grid.ScaleValues(), grid.ZeroPointValues());

    private string BatchNormalization(BatchNorm bn, string name, string input)
    {
        var count = bn.num_features;
        var gamma = bn.weight is null ? Enumerable.Repeat(1f, (int)count).ToArray() : Floats(bn.weight);
        var beta = bn.bias is null ? new float[count] : Floats(bn.bias);
        return _onnx.Node("BatchNormalization", name, new[]
        {
            input, _onnx.Initializer($"{name}.scale", gamma, count), _onnx.Initializer($"{name}.bias", beta, count),
            _onnx.Initializer($"{name}.mean", Floats(bn.running_mean!), count), _onnx.Initializer($"{name}.var", Floats(bn.running_var!), count),
        }, new Dictionary<string, object> { ["epsilon"] = (float)bn.eps });
    }

    private string GlobalAveragePool(AdaptiveAvgPool2d pool, string name, string input)
    {
        if (pool.output_size.Any(s => s != 1))
            throw new NotSupportedException($"Module '{name}': only AdaptiveAvgPool2d(1) exports (as GlobalAveragePool).");
        return _onnx.Node("GlobalAveragePool", name, new[] { input });
    }

    private static long FlattenAxis(Flatten flatten, string name)
    {
        if (flatten.start_dim != 1 || flatten.end_dim != -1)
            throw new NotSupportedException($"Module '{name}': only Flatten(1, -1) exports (as ONNX Flatten).");
        return 1;
    }

    private static Dictionary<string, object> Pooling(long[] kernel, long[]? stride, long[]? padding, long[]? dilation, bool ceil)
    {
        var attributes = new Dictionary<string, object>
        {
            ["kernel_shape"] = kernel,
            ["strides"] = stride ?? kernel,
            ["pads"] = Pads(padding ?? new long[kernel.Length]),
            ["ceil_mode"] = ceil ? 1L : 0L,
        };
        if (dilation is not null && dilation.Any(d => d != 1)) attributes["dilations"] = dilation;
        return attributes;
    }

    private static Dictionary<string, object> AveragePooling(AvgPool2d pool)
    {
        var kernel = pool.kernel_size!;
        return new Dictionary<string, object>
        {
            ["kernel_shape"] = kernel,
            ["strides"] = pool.stride ?? kernel,
            ["pads"] = Pads(pool.padding ?? new long[kernel.Length]),
            ["ceil_mode"] = pool.ceil_mode ? 1L : 0L,
            ["count_include_pad"] = pool.count_include_pad ? 1L : 0L,
        };
    }

    private static Dictionary<string, object> ConvAttributes(Convolution conv) => new()
    {
        ["kernel_shape"] = conv.kernel_size,
        ["strides"] = conv.stride,
        ["pads"] = Pads(conv.padding!),
        ["dilations"] = conv.dilation,
        ["group"] = conv.groups,
    };

    private static long[] Pads(long[] padding) => padding.Concat(padding).ToArray();

    private static float[] Floats(Tensor t) => t.detach().cpu().contiguous().to_type(ScalarType.Float32).data<float>().ToArray();

    private static string Join(string prefix, string name) => prefix.Length == 0 ? name : $"{prefix}.{name}";
}

/// <summary>An exported QDQ ONNX model and its per-layer report.</summary>
/// <param name="OnnxBytes">The serialised model.</param>
/// <param name="Report">What was quantized and how.</param>
internal sealed record ExportedModel(byte[] OnnxBytes, QuantizationReport Report);
