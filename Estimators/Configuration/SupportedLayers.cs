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

    /// <summary>Every op type name accepted in op_types (besides <c>default</c>).</summary>
    public static IReadOnlyList<string> OpTypes { get; } = new[]
    {
        "Conv1d", "Conv2d", "Linear", "BatchNorm1d", "BatchNorm2d", "ReLU", "ReLU6", "Hardtanh", "LeakyReLU", "Sigmoid",
        "Tanh", "MaxPool2d", "AvgPool2d", "AdaptiveAvgPool2d", "Flatten", "Dropout", "Identity",
    };

    /// <summary>The op type name of <paramref name="module"/>, <c>Sequential</c> for containers, or null when
    /// MLNetQuant cannot handle it.</summary>
    public static string? OpTypeOf(nn.Module module) => module switch
    {
        Sequential => "Sequential",
        Conv1d => "Conv1d",
        Conv2d => "Conv2d",
        Linear => "Linear",
        BatchNorm1d => "BatchNorm1d",
        BatchNorm2d => "BatchNorm2d",
        ReLU6 => "ReLU6",
        ReLU => "ReLU",
        Hardtanh => "Hardtanh",
        LeakyReLU => "LeakyReLU",
        Sigmoid => "Sigmoid",
        Tanh => "Tanh",
        MaxPool2d => "MaxPool2d",
        AvgPool2d => "AvgPool2d",
        AdaptiveAvgPool2d => "AdaptiveAvgPool2d",
        Flatten => "Flatten",
        Dropout => "Dropout",
        Identity => "Identity",
        _ => null,
    };

    /// <summary>Whether layers of this op type carry a weight that can be quantized.</summary>
    public static bool HasWeight(string opType) => DefaultOpTypes.Contains(opType);
}
