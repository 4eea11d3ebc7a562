using MLNetQuant.Configuration;
using MLNetQuant.Core;
using static TorchSharp.torch;

namespace MLNetQuant.Algorithms;

/// <summary>Learned step size quantization (Esser et al., ICLR 2020): every quantized tensor learns its step; latent
/// weights train too (NNI v2.5+ freezes unfolded ones: §7.5); BN folded.</summary>
internal sealed class LsqAlgorithm : QuantAlgorithm
{
    public override QuantAlgorithmRules Rules => QuantAlgorithmRules.Lsq;

    public override bool FoldsBatchNorm => true;

    public override IReadOnlyList<QuantConfig> DefaultConfig => WeightsAndInputs(8);

    public override TensorQuantizer Create(LayerQuantPlan plan, QuantType type, Tensor? effectiveWeight, Device device)
    {
        if (type != QuantType.Weight && plan.Specs[type].Scheme.IsPerChannel())
            throw new QuantConfigException(plan.ConfigIndex, "quant_scheme",
                $"LSQ learns one step per activation tensor; the {type} of '{plan.Name}' needs a per-tensor scheme.");
        return new LsqQuantizer(type, plan.Specs[type], type == QuantType.Weight ? effectiveWeight : null, device);
    }
}
