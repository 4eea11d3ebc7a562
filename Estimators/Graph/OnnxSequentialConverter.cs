using System.Text;
using Onnx;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNetQuant.Graph;

/// <summary>Turns an imported float ONNX graph that is a chain — each node reading the previous one's output, from
/// the single input to the single output — into a TorchSharp Sequential of the layers MLNetQuant trains (Conv2d,
/// Linear, ReLU, ReLU6, Hardtanh, LeakyReLU, Sigmoid, Tanh, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d, Flatten), with the
/// ONNX initializers as its parameters. That is the door through which all six algorithms fine-tune an ONNX file
/// today; graphs with branches (residual sums, concatenations) are named and refused. Module names are the ONNX node
/// names with every character other than letters, digits and '_' replaced by '_', so config_list's op_names can
/// select them.</summary>
internal static class OnnxSequentialConverter
{
    /// <summary>The Sequential and the shape of one example (the input's dimensions after the batch).</summary>
    /// <exception cref="NotSupportedException">Several inputs or outputs, a branch, or an op or attribute with no
    /// TorchSharp layer here — named with the node.</exception>
    public static (Sequential Model, long[] InputShape) Convert(ModelProto model, string source)
    {
        var graph = model.Graph;
        var inputs = InputBinding.GraphInputs(model);
        if (inputs.Count != 1 || graph.Output.Count != 1)
            throw new NotSupportedException($"{source}: training takes a model with one input and one output; this one has {inputs.Count} and {graph.Output.Count}.");
        var inputShape = inputs[0].Type.TensorType.Shape.Dim.Skip(1).Select(d => d.DimValue > 0 ? d.DimValue
            : throw new NotSupportedException($"{source}: input '{inputs[0].Name}' has a symbolic dimension besides the batch; training needs a fixed example shape.")).ToArray();
        var initializers = graph.Initializer.ToDictionary(t => t.Name);
        var layers = new List<(string, nn.Module<Tensor, Tensor>)>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        var current = inputs[0].Name;
        foreach (var node in graph.Node)
        {
            if (node.Input.Count == 0 || node.Input[0] != current || node.Input.Skip(1).Any(i => i.Length > 0 && !initializers.ContainsKey(i)))
                throw new NotSupportedException($"{source}: node '{node.Name}' ({node.OpType}) does not continue a single chain from the input " +
                    "(a branch, a residual sum or a concatenation); training an ONNX model takes chains of layers today.");
            layers.Add((ModuleName(node.Name, names), Layer(node, initializers, source)));
            current = node.Output[0];
        }
        if (current != graph.Output[0].Name)
            throw new NotSupportedException($"{source}: the chain does not end at the output '{graph.Output[0].Name}'.");
        return (nn.Sequential(layers.ToArray()), inputShape);
    }

    private static string ModuleName(string nodeName, HashSet<string> taken)
    {
        var builder = new StringBuilder();
        foreach (var c in nodeName.Trim('/')) builder.Append(char.IsLetterOrDigit(c) || c == '_' ? c : '_');
        var name = builder.Length == 0 ? "layer" : builder.ToString();
        var unique = name;
        for (var i = 1; !taken.Add(unique); i++) unique = $"{name}_{i}";
        return unique;
    }

    private static nn.Module<Tensor, Tensor> Layer(NodeProto node, Dictionary<string, TensorProto> initializers, string source)
    {
        NotSupportedException Refuse(string why) => new($"{source}: node '{node.Name}' ({node.OpType}): {why}");
        long[] Ints(string name, long[] fallback) => GraphEditor.Ints(node, name) ?? fallback;
        switch (node.OpType)
        {
            case "Conv":
            {
                var weight = initializers[node.Input[1]];
                if (weight.Dims.Count != 4) throw Refuse("only 2-D convolutions are trained (weights [out, in/groups, kh, kw])");
                var pads = Ints("pads", new long[] { 0, 0, 0, 0 });
                if (pads[0] != pads[2] || pads[1] != pads[3]) throw Refuse("asymmetric padding has no Conv2d equivalent");
                if (node.Attribute.FirstOrDefault(a => a.Name == "auto_pad") is { } autoPad && autoPad.S.ToStringUtf8() is not ("NOTSET" or ""))
                    throw Refuse("auto_pad is not supported; export with explicit pads");
                var strides = Ints("strides", new long[] { 1, 1 });
                var dilations = Ints("dilations", new long[] { 1, 1 });
                var groups = GraphEditor.Int(node, "group", 1);
                var hasBias = node.Input.Count > 2 && node.Input[2].Length > 0;
                var conv = nn.Conv2d(weight.Dims[1] * groups, weight.Dims[0], (weight.Dims[2], weight.Dims[3]), stride: (strides[0], strides[1]),
                    padding: (pads[0], pads[1]), dilation: (dilations[0], dilations[1]), groups: groups, bias: hasBias);
                Copy(conv.weight!, weight);
                if (hasBias) Copy(conv.bias!, initializers[node.Input[2]]);
                return conv;
            }
            case "Gemm":
            {
                if (GraphEditor.Int(node, "transA", 0) != 0 || GraphEditor.Float(node, "alpha", 1f) != 1f || GraphEditor.Float(node, "beta", 1f) != 1f)
                    throw Refuse("only Gemm with transA = 0, alpha = beta = 1 (a Linear layer) is trained");
                var weight = initializers[node.Input[1]];
                var transB = GraphEditor.Int(node, "transB", 0) == 1;
                var (outFeatures, inFeatures) = transB ? (weight.Dims[0], weight.Dims[1]) : (weight.Dims[1], weight.Dims[0]);
                var hasBias = node.Input.Count > 2 && node.Input[2].Length > 0;
                var linear = nn.Linear(inFeatures, outFeatures, hasBias);
                using (no_grad())
                using (var values = tensor(OnnxTensors.Floats(weight), weight.Dims.ToArray()))
                using (var oriented = transB ? values.alias() : values.t())
                    linear.weight!.copy_(oriented);
                if (hasBias)
                {
                    var bias = initializers[node.Input[2]];
                    if (OnnxTensors.ElementCount(bias) != outFeatures) throw Refuse("the bias must hold one value per output");
                    using (no_grad())
                    using (var values = tensor(OnnxTensors.Floats(bias), new[] { outFeatures }))
                        linear.bias!.copy_(values);
                }
                return linear;
            }
            case "Relu":
                return nn.ReLU();
            case "Clip":
            {
                var min = node.Input.Count > 1 && node.Input[1].Length > 0 ? OnnxTensors.Floats(initializers[node.Input[1]])[0] : float.NegativeInfinity;
                var max = node.Input.Count > 2 && node.Input[2].Length > 0 ? OnnxTensors.Floats(initializers[node.Input[2]])[0] : float.PositiveInfinity;
                if (min == 0 && max == 6) return nn.ReLU6();
                if (float.IsFinite(min) && float.IsFinite(max)) return nn.Hardtanh(min, max);
                if (min == 0 && float.IsPositiveInfinity(max)) return nn.ReLU();
                throw Refuse("only Clip with both bounds (Hardtanh, ReLU6) or Clip(0, ∞) is trained");
            }
            case "LeakyRelu":
                return nn.LeakyReLU(GraphEditor.Float(node, "alpha", 0.01f));
            case "Sigmoid":
                return nn.Sigmoid();
            case "Tanh":
                return nn.Tanh();
            case "MaxPool":
            case "AveragePool":
            {
                var kernel = Ints("kernel_shape", Array.Empty<long>());
                if (kernel.Length != 2) throw Refuse("only 2-D pooling is trained");
                var pads = Ints("pads", new long[] { 0, 0, 0, 0 });
                if (pads[0] != pads[2] || pads[1] != pads[3]) throw Refuse("asymmetric padding has no pooling-layer equivalent");
                var strides = Ints("strides", new long[] { 1, 1 });
                var ceil = GraphEditor.Int(node, "ceil_mode", 0) == 1;
                if (node.OpType == "MaxPool")
                {
                    if (Ints("dilations", new long[] { 1, 1 }).Any(d => d != 1)) throw Refuse("dilated max pooling is not trained");
                    return nn.MaxPool2d((kernel[0], kernel[1]), (strides[0], strides[1]), (pads[0], pads[1]), ceil_mode: ceil);
                }
                return nn.AvgPool2d((kernel[0], kernel[1]), (strides[0], strides[1]), (pads[0], pads[1]), ceil_mode: ceil,
                    count_include_pad: GraphEditor.Int(node, "count_include_pad", 0) == 1);
            }
            case "GlobalAveragePool":
                return nn.AdaptiveAvgPool2d(1);
            case "Flatten" when GraphEditor.Int(node, "axis", 1) == 1:
                return nn.Flatten();
            case "Reshape" when initializers.TryGetValue(node.Input[1], out var shape) && OnnxTensors.Longs(shape) is { Length: 2 } dims &&
                                (dims[0] is 0 or -1) && (dims[1] == -1 || dims[0] == -1):
                return nn.Flatten();
            default:
                throw Refuse($"no TorchSharp layer for it here (trainable: Conv, Gemm, Relu, Clip, LeakyRelu, Sigmoid, Tanh, MaxPool, " +
                    "AveragePool, GlobalAveragePool, Flatten and Reshape to [batch, -1])");
        }
    }

    private static void Copy(Tensor parameter, TensorProto values)
    {
        using var _ = no_grad();
        using var source = tensor(OnnxTensors.Floats(values), values.Dims.ToArray());
        using var reshaped = source.reshape(parameter.shape); // held: a temporary could be finalized during copy_
        parameter.copy_(reshaped);
    }
}
