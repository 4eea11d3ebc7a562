using Onnx;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNetQuant.Graph;

/// <summary>One node of an <see cref="OnnxGraphModule"/>, as a module of its own so that config lists select it by op
/// type (the ONNX one: Conv, Gemm, MatMul …) and name, and quantizers attach to its input, weight and output. It holds
/// no parameters: its weight and bias are the graph's (shared initializers stay one parameter).</summary>
internal sealed class OnnxNodeModule : nn.Module
{
    private readonly int _opset;
    private readonly Func<string, Tensor> _constant;

    internal OnnxNodeModule(string moduleName, NodeProto node, int opset, string? weightName, string? biasName, Func<string, Tensor> constant)
        : base(moduleName)
    {
        Node = node;
        _opset = opset;
        WeightName = weightName;
        BiasName = biasName;
        _constant = constant;
    }

    /// <summary>The ONNX node (name, op type, inputs, outputs, attributes).</summary>
    public NodeProto Node { get; }

    /// <summary>The ONNX op type, as config lists name it.</summary>
    public string OpType => Node.OpType;

    /// <summary>The initializer this Conv/ConvTranspose/Gemm/MatMul multiplies by (its input 1), or null for nodes
    /// without a constant weight.</summary>
    public string? WeightName { get; }

    /// <summary>The bias initializer (input 2 of Conv/ConvTranspose/Gemm), or null.</summary>
    public string? BiasName { get; }

    /// <summary>The weight's output-channel axis (<see cref="OnnxOps.WeightChannelAxis"/>).</summary>
    public int WeightChannelAxis => OnnxOps.WeightChannelAxis(Node, (int)Weight.dim());

    /// <summary>The weight parameter (the latent weight the optimizer trains).</summary>
    public Parameter Weight => WeightName is not null && _constant(WeightName) is Parameter p ? p
        : throw new InvalidOperationException($"Node '{Node.Name}' ({OpType}) has no trainable weight.");

    /// <summary>The bias parameter, or null.</summary>
    public Parameter? Bias => BiasName is null ? null : _constant(BiasName) as Parameter;

    /// <summary>Computes the node on <paramref name="inputs"/> (null for an omitted optional input).</summary>
    public Tensor[] Execute(IReadOnlyList<Tensor?> inputs) => OnnxOps.Run(Node, inputs, _opset);

    /// <summary>Computes the node with <paramref name="x"/> as its data input and, when given, <paramref name="weight"/>
    /// (a quantized weight, say) in place of its own.</summary>
    public Tensor[] ExecuteWith(IReadOnlyList<Tensor?> inputs, Tensor x, Tensor? weight)
    {
        var replaced = inputs.ToArray();
        replaced[0] = x;
        if (weight is not null) replaced[1] = weight;
        return OnnxOps.Run(Node, replaced, _opset);
    }
}
