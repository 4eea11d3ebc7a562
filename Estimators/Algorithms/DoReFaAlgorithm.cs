using MLNetQuant.Configuration;
using static TorchSharp.torch;

namespace MLNetQuant.Algorithms;

/// <summary>DoReFa-Net (Zhou et al. 2016): tanh-normalised k-bit weights, and optionally k-bit activations in [0, 1]
/// (outputs; beyond NNI v2). BN stays a separate layer during training.</summary>
internal sealed class DoReFaAlgorithm : QuantAlgorithm
{
    public override QuantAlgorithmRules Rules => QuantAlgorithmRules.DoReFa;

    public override bool FoldsBatchNorm => false;

    /// <summary>7-bit weights: DoReFa's k-bit grid has 2^k levels at odd multiples of 1/(2^k − 1), i.e. the integers
    /// −(2^k − 1) … 2^k − 1 in steps of 2, which need k + 1 bits; 7 is the widest grid ONNX Runtime's int8 weights hold
    /// (an 8-bit grid can never be exported).</summary>
    public override IReadOnlyList<QuantConfig> DefaultConfig => new[]
    {
        new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 7, OpTypes = { "default" } },
    };

    public override int WeightStorageBits(int bits) => bits + 1;

    public override TensorQuantizer Create(LayerQuantPlan plan, QuantType type, Tensor? effectiveWeight, Device device) =>
        type == QuantType.Weight
            ? new DoReFaWeightQuantizer(plan.Specs[type])
            : new DoReFaActivationQuantizer(type, plan.Specs[type]);
}
