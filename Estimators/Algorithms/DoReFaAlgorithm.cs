using MLNetQuant.Configuration;
using static TorchSharp.torch;

namespace MLNetQuant.Algorithms;

/// <summary>DoReFa-Net (Zhou et al. 2016): tanh-normalised k-bit weights, and optionally k-bit activations in [0, 1]
/// (outputs; beyond NNI v2). BN stays a separate layer during training.</summary>
internal sealed class DoReFaAlgorithm : QuantAlgorithm
{
    public override QuantAlgorithmRules Rules => QuantAlgorithmRules.DoReFa;

    public override bool FoldsBatchNorm => false;

    public override IReadOnlyList<QuantConfig> DefaultConfig => new[]
    {
        new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 8, OpTypes = { "default" } },
    };

    public override TensorQuantizer Create(LayerQuantPlan plan, QuantType type, Tensor? effectiveWeight, Device device) =>
        type == QuantType.Weight
            ? new DoReFaWeightQuantizer(plan.Specs[type])
            : new DoReFaActivationQuantizer(type, plan.Specs[type]);
}
