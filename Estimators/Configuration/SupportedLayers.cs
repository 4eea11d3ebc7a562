using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNetQuant.Configuration;

/// <summary>The layer vocabulary MLNetQuant can quantize and export (DESIGN.md §5), keyed by the PyTorch class names
/// users write in op_types. Module types are matched with <c>is</c>, not by name (TorchSharp's BatchNorm2d reports
/// "BatchNorm1d" from GetName()).</summary>
public static class SupportedLayers
{
    /// <summary>What op_types' <c>default</c> stands for: the weighted layers.</summary>
    public static IReadOnlyList<string> DefaultOpTypes { get; } = new[] { "Conv1d", "Conv2d", "Linear" };

    // One table: the op type names users write and the TorchSharp module types they mean.
    private static readonly (string Name, Type Type)[] Layers =
    {
        ("Conv1d", typeof(Conv1d)), ("Conv2d", typeof(Conv2d)), ("Linear", typeof(Linear)),
        ("BatchNorm1d", typeof(BatchNorm1d)), ("BatchNorm2d", typeof(BatchNorm2d)), ("ReLU", typeof(ReLU)),
        ("ReLU6", typeof(ReLU6)), ("Hardtanh", typeof(Hardtanh)), ("LeakyReLU", typeof(LeakyReLU)),
        ("Sigmoid", typeof(Sigmoid)), ("Tanh", typeof(Tanh)), ("MaxPool2d", typeof(MaxPool2d)),
        ("AvgPool2d", typeof(AvgPool2d)), ("AdaptiveAvgPool2d", typeof(AdaptiveAvgPool2d)), ("Flatten", typeof(Flatten)),
        ("Dropout", typeof(Dropout)), ("Identity", typeof(Identity)),
    };

    /// <summary>Every op type name accepted in op_types (besides <c>default</c>): the TorchSharp layer names, then the
    /// ONNX op types of an imported graph's nodes (<c>OnnxModelPath</c>).</summary>
    public static IReadOnlyList<string> OpTypes { get; } = Layers.Select(l => l.Name).Concat(Graph.OnnxOps.Supported.Order()).Distinct().ToArray();

    /// <summary>The containers MLNetQuant walks into: their children are quantized, not the containers.</summary>
    public static IReadOnlyList<string> Containers { get; } = new[] { "Sequential", "ResidualBlock", "OnnxGraph" };

    /// <summary>The op type name of <paramref name="module"/>, <c>Sequential</c> or <c>ResidualBlock</c> for
    /// containers, or null when MLNetQuant cannot handle it.</summary>
    public static string? OpTypeOf(nn.Module module)
    {
        ArgumentNullException.ThrowIfNull(module);
        if (module is Sequential) return "Sequential";
        if (module is Modeling.ResidualBlock) return "ResidualBlock";
        if (module is Graph.OnnxGraphModule) return "OnnxGraph";
        if (module is Graph.OnnxNodeModule node) return node.OpType;
        foreach (var (name, type) in Layers)
            if (type.IsInstanceOfType(module)) return name;
        return null;
    }

    /// <summary>Whether layers of this op type carry a weight that can be quantized.</summary>
    public static bool HasWeight(string opType) => DefaultOpTypes.Contains(opType);

    /// <summary>Whether <paramref name="module"/> carries a weight that can be quantized (what <c>default</c> selects):
    /// a Conv1d/Conv2d/Linear layer, or an imported Conv/ConvTranspose/Gemm/MatMul node with a constant weight.</summary>
    internal static bool HasWeight(nn.Module module) => module is Graph.OnnxNodeModule node
        ? node.WeightName is not null
        : OpTypeOf(module) is { } type && HasWeight(type);

    /// <summary>The output-channel axis of <paramref name="module"/>'s weight (per-channel grids run along it).</summary>
    internal static int WeightChannelAxis(nn.Module module) => module is Graph.OnnxNodeModule node ? node.WeightChannelAxis : 0;
}
