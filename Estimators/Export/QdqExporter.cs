using MLNetQuant.Algorithms;
using MLNetQuant.Core;
using MLNetQuant.Modeling;
using MLNetQuant.Onnx;
using TorchSharp.Modules;
using static TorchSharp.torch;
using ElementType = MLNetQuant.Onnx.OnnxGraphBuilder.ElementType;

namespace MLNetQuant.Export;

/// <summary>Writes a <see cref="QuantizedNetwork"/> as a QDQ ONNX model (opset 13) that ONNX Runtime fuses into integer
/// kernels. A TorchSharp network is first written as its float graph (BatchNorm folded, also after quantization for
/// DoReFa and BNN; every layer its ONNX op, each node named after its module) plus <see cref="QdqAnnotations"/> from
/// its quantizers; an imported ONNX graph is its own float graph (<see cref="TrainedGraphExporter"/>). Either way
/// <see cref="QdqGraphRewriter"/>, the one Q/DQ writer, inserts the Q/DQ pairs, integer weights and int32 biases and
/// repeats each grid over the grid-preserving ops before it, so ORT fuses.</summary>
internal sealed class QdqExporter
{
    private readonly QuantizedNetwork _network;
    private readonly OnnxGraphBuilder _onnx = new();
    private readonly QdqEmitter _qdq;
    private readonly Dictionary<string, QuantizedLayer> _layers;
    private readonly HashSet<string> _foldedBatchNorms;
    private readonly QdqAnnotations _annotations = new();
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
        string featureColumn, string scoreColumn) =>
        Export(network, Training.ModelInputs.Flat(featureColumn, inputShape), outputs, classification, scoreColumn);

    /// <summary>Exports <paramref name="network"/> reading <paramref name="inputs"/> (a flat features column, or an
    /// imported graph's own inputs from their columns).</summary>
    public static ExportedModel Export(QuantizedNetwork network, Training.ModelInputs inputs, long outputs, bool classification, string scoreColumn)
    {
        if (network.Model is Graph.OnnxGraphModule graph)
            return TrainedGraphExporter.Export(network, graph, inputs, outputs, classification, scoreColumn);
        if (!inputs.IsFlat) throw new ArgumentException("A TorchSharp network reads one flat features column.", nameof(inputs));
        var (featureColumn, inputShape) = (inputs.Bindings[0].Column, inputs.Bindings[0].RowDims);
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
        var x = _onnx.Node("Reshape", "input", new[] { input, shape });
        var y = Walk(_network.Model, "", x);
        var score = classification ? _onnx.Node("Softmax", "softmax", new[] { y }, new Dictionary<string, object> { ["axis"] = 1L }) : y;
        _onnx.Output(scoreColumn, score, ElementType.Float, outputs);
        if (classification)
            _onnx.Output(PredictedIndexColumn, _onnx.Node("ArgMax", "argmax", new[] { y }, new Dictionary<string, object> { ["axis"] = 1L, ["keepdims"] = 0L }),
                ElementType.Int64);
        var report = new QuantizationReport(QuantizationReport.CurrentFormatVersion, _network.AlgorithmName, _annotations.Report);
        var model = global::Onnx.ModelProto.Parser.ParseFrom(
            _onnx.Build(opset: 13, new Dictionary<string, string> { [QuantizationReport.MetadataKey] = report.ToJson() }));
        QdqGraphRewriter.Rewrite(model, new OnnxGraphBuilder(model.Graph), _annotations, new Dictionary<string, string>(StringComparer.Ordinal));
        return new ExportedModel(Google.Protobuf.MessageExtensions.ToByteArray(model), report);
    }

    /// <summary>The ONNX output holding each row's arg-max class index (int64), for ONNX Runtime users; ML.NET's
    /// OnnxTransformer can only surface it as a 1-slot vector, so the transformer does not map it.</summary>
    public const string PredictedIndexColumn = "PredictedLabelIndex";

    // Writes the float graph of a module (tensor names in, tensor name out), recording the quantized tensors.
    private string Walk(nn.Module module, string name, string x)
    {
        switch (module)
        {
            case Sequential:
                return WalkSequential(module, name, x);
            case ResidualBlock block:
                var branch = Walk(block.Branch, Join(name, "branch"), x);
                var shortcut = Walk(block.Shortcut, Join(name, "shortcut"), x);
                return _onnx.Node("Add", Join(name, "add"), new[] { branch, shortcut });
            default:
                return Leaf(module, name, x, batchNorm: null);
        }
    }

    private string WalkSequential(nn.Module container, string name, string x)
    {
        var children = container.named_children().Select(c => (Name: Join(name, c.name), Module: c.module)).ToList();
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
        }
        return x;
    }

    // One layer: its ONNX node, and the grids of its quantized input and output as annotations on that node.
    private string Leaf(nn.Module module, string name, string x, BatchNorm? batchNorm)
    {
        var layer = _layers.GetValueOrDefault(name);
        var y = module is Convolution or Linear ? Weighted(module, name, layer, x, batchNorm) : Op(module, name, x);
        if (layer?.Get(QuantType.Input) is { } inputQuantizer)
            _annotations.Inputs[(y, 0)] = Report(layer, QuantType.Input, inputQuantizer);
        if (layer?.Get(QuantType.Output) is { } outputQuantizer)
        {
            var grid = Report(layer, QuantType.Output, outputQuantizer);
            if (outputQuantizer is BinaryActivationQuantizer) _annotations.Binarized.Add(y);
            else _annotations.Tensors[y] = grid;
        }
        return y;
    }

    // Each op's node is named as its output (OnnxGraphBuilder), so the returned name keys the node's annotations too.
    private string Op(nn.Module module, string name, string x)
    {
        string Unary(string op, Dictionary<string, object>? attributes = null) => _onnx.Node(op, name, new[] { x }, attributes);
        var output = module switch
        {
            ReLU => Unary("Relu"),
            ReLU6 => _qdq.Clip(name, x, 0, 6),
            Hardtanh h => _qdq.Clip(name, x, (float)h.min_val, (float)h.max_val),
            LeakyReLU l => Unary("LeakyRelu", new() { ["alpha"] = (float)l.negative_slope }),
            Sigmoid => Unary("Sigmoid"),
            Tanh => Unary("Tanh"),
            MaxPool2d p => Unary("MaxPool", Pooling(p.kernel_size!, p.stride, p.padding, p.dilation, p.ceil_mode)),
            AvgPool2d p => Unary("AveragePool", AveragePooling(p)),
            AdaptiveAvgPool2d a => GlobalAveragePool(a, name, x),
            Flatten f => Unary("Flatten", new() { ["axis"] = FlattenAxis(f, name) }),
            Dropout or Identity => Unary("Identity"),
            BatchNorm bn => BatchNormalization(bn, name, x),
            _ => throw new NotSupportedException($"Module '{name}' ({module.GetType().Name}) has no ONNX export."),
        };
        return output;
    }

    // A conv or linear layer as Conv/Gemm with its effective float weight and bias (BatchNorm folded in), and its
    // quantized weight as an annotation of integers on the node.
    private string Weighted(nn.Module module, string name, QuantizedLayer? layer, string x, BatchNorm? postFold)
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
        QuantizedWeight? quantizedWeight = null;
        Tensor? postFactor = null;
        if (postFold is not null)
        {
            postFactor = WeightedLayer.FoldFactor(postFold);
            effectiveBias = WeightedLayer.FoldedBias(postFold, postFactor, effectiveBias);
        }
        if (layer?.Get(QuantType.Weight) is { } weightQuantizer)
        {
            var quantized = weightQuantizer.Quantize(effective, _eval);
            var grid = Report(layer, QuantType.Weight, weightQuantizer);
            var (ints, scales, zeroPoints, signed) = WeightGrid.Integers(name, quantized, grid, axis: 0);
            if (postFactor is not null)
            {
                // Folding after quantization (DoReFa, BNN): the per-channel factor joins the scale; a negative factor
                // flips that channel's integers.
                var factors = postFactor.cpu().data<float>().ToArray();
                var perChannel = ints.Length / (int)channels;
                for (var c = 0; c < channels; c++)
                {
                    scales[c] *= Math.Abs(factors[c]);
                    if (factors[c] < 0)
                        for (var k = 0; k < perChannel; k++) ints[c * perChannel + k] = -ints[c * perChannel + k];
                }
                if (zeroPoints.Any(z => z != 0)) throw new NotSupportedException($"Layer '{name}': cannot fold a BN into an affine weight grid.");
            }
            quantizedWeight = new QuantizedWeight(ints, scales, zeroPoints, signed, effective.shape, Axis: 0);
        }
        if (postFactor is not null) effective = effective.mul(WeightedLayer.AlongAxis(postFactor, effective.dim(), 0));

        var inputs = new List<string> { x, _onnx.Initializer($"{name}.weight", Floats(effective), effective.shape) };
        if (effectiveBias is not null) inputs.Add(_onnx.Initializer($"{name}.bias", Floats(effectiveBias), effectiveBias.shape[0]));
        var output = module switch
        {
            Linear => _onnx.Node("Gemm", name, inputs, new Dictionary<string, object> { ["transB"] = 1L }),
            Convolution conv => _onnx.Node("Conv", name, inputs, ConvAttributes(conv)),
            _ => throw new NotSupportedException($"Module '{name}' has no ONNX export."),
        };
        if (quantizedWeight is not null) _annotations.Weights[output] = quantizedWeight;
        return output;
    }

    private QParams Report(QuantizedLayer layer, QuantType type, TensorQuantizer quantizer) =>
        LayerGrid.Read(layer, type, quantizer, _annotations.Report);

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
internal sealed record ExportedModel(byte[] OnnxBytes, QuantizationReport Report)
{
    /// <summary>The columns the model reads, in its input order (the features column alone for a flat input).</summary>
    public string[]? InputColumns { get; init; }

    /// <summary>Shapes ML.NET must feed ([1, row dims…]) for inputs with symbolic dimensions; null for none.</summary>
    public IDictionary<string, int[]>? InputShapes { get; init; }
}
