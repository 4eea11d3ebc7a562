using MLNetQuant.Configuration;
using MLNetQuant.Core;
using static TorchSharp.torch;

namespace MLNetQuant.Algorithms;

/// <summary>One of NNI's quantization algorithms: what its config may say, whether it folds batch norms, and the
/// quantizer it puts on each configured tensor.</summary>
internal abstract class QuantAlgorithm
{
    /// <summary>What the algorithm's config list accepts.</summary>
    public abstract QuantAlgorithmRules Rules { get; }

    /// <summary>Whether conv/linear→BatchNorm pairs are folded, so the quantized weight is the folded one (the
    /// affine-grid algorithms; DoReFa and BNN transform the raw weight and keep the BN).</summary>
    public abstract bool FoldsBatchNorm { get; }

    /// <summary>The config used when the user gives none.</summary>
    public abstract IReadOnlyList<QuantConfig> DefaultConfig { get; }

    /// <summary>The config used for <paramref name="model"/> when the user gives none (BNN keeps the model's first and
    /// last weighted layers at 8 bits, so it needs the model).</summary>
    public virtual IReadOnlyList<QuantConfig> DefaultConfigFor(nn.Module model) => DefaultConfig;

    /// <summary>Bits of integer storage a <paramref name="bits"/>-bit weight grid of this algorithm needs in the exported
    /// model (DoReFa's k-bit grid sits on odd multiples of 1/(2^k − 1): k + 1 bits).</summary>
    public virtual int WeightStorageBits(int bits) => bits;

    /// <summary>Creates the quantizer of one tensor.</summary>
    /// <param name="plan">The layer's resolved plan.</param>
    /// <param name="type">Which tensor.</param>
    /// <param name="effectiveWeight">For weights: the weight the layer computes with (BN-folded where folded).</param>
    /// <param name="device">Where the model runs.</param>
    public abstract TensorQuantizer Create(LayerQuantPlan plan, QuantType type, Tensor? effectiveWeight, Device device);

    /// <summary>Weights and inputs of every conv and linear layer at <paramref name="bits"/>: what ONNX Runtime needs to
    /// run them as integer kernels.</summary>
    protected static IReadOnlyList<QuantConfig> WeightsAndInputs(int bits) => new[]
    {
        new QuantConfig { QuantTypes = { QuantType.Weight, QuantType.Input }, QuantBits = bits, OpTypes = { "default" } },
    };
}
