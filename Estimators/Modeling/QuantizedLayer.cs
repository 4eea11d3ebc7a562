using MLNetQuant.Algorithms;
using MLNetQuant.Core;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNetQuant.Modeling;

/// <summary>One quantized module of a <see cref="QuantizedNetwork"/>: its name, type, the batch norm folded into it,
/// and the grid of each quantized tensor.</summary>
public sealed class QuantizedLayer
{
    internal QuantizedLayer(string name, string opType, nn.Module module, string? foldedBatchNormName, BatchNorm? batchNorm,
        IReadOnlyDictionary<QuantType, TensorQuantizer> quantizers)
    {
        Name = name;
        OpType = opType;
        Module = module;
        FoldedBatchNormName = foldedBatchNormName;
        BatchNorm = batchNorm;
        Quantizers = quantizers;
    }

    /// <summary>Dotted module name, as in named_modules().</summary>
    public string Name { get; }

    /// <summary>The op type (Conv2d, Linear, ReLU …).</summary>
    public string OpType { get; }

    /// <summary>Name of the BatchNorm folded into this layer's weight and bias, or null.</summary>
    public string? FoldedBatchNormName { get; }

    /// <summary>The quantized tensors of this layer.</summary>
    public IReadOnlyCollection<QuantType> QuantTypes => Quantizers.Keys.ToArray();

    /// <summary>The grid each quantized tensor uses (LSQ may have switched an activation to the unsigned grid).</summary>
    public QuantSpec SpecOf(QuantType type) => QuantizerOf(type).Spec;

    /// <summary>The scale and zero-point of <paramref name="type"/>'s grid as last used, on the CPU (the caller
    /// disposes them), or null when that tensor has not been quantized yet.</summary>
    /// <exception cref="ArgumentException">The layer does not quantize <paramref name="type"/>.</exception>
    public QParams? CurrentQParams(QuantType type) => QuantizerOf(type).CurrentQParams();

    internal nn.Module Module { get; }

    internal BatchNorm? BatchNorm { get; }

    internal IReadOnlyDictionary<QuantType, TensorQuantizer> Quantizers { get; }

    internal TensorQuantizer? Get(QuantType type) => Quantizers.GetValueOrDefault(type);

    private TensorQuantizer QuantizerOf(QuantType type) => Quantizers.TryGetValue(type, out var q)
        ? q
        : throw new ArgumentException($"Layer '{Name}' does not quantize its {type}.", nameof(type));
}
