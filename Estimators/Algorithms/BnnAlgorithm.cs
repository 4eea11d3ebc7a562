using MLNetQuant.Configuration;
using static TorchSharp.torch;

namespace MLNetQuant.Algorithms;

/// <summary>Binarized neural networks (Courbariaux/Hubara et al. 2016): ±1 weights and activations with
/// straight-through gradients; latent weights clipped to [−1, 1] after every optimizer step.</summary>
internal sealed class BnnAlgorithm : QuantAlgorithm
{
    private readonly bool _clipLatentWeights;

    public BnnAlgorithm(bool clipLatentWeights) => _clipLatentWeights = clipLatentWeights;

    public override QuantAlgorithmRules Rules => QuantAlgorithmRules.Bnn;

    public override bool FoldsBatchNorm => false;

    public override IReadOnlyList<QuantConfig> DefaultConfig => new[]
    {
        new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 1, OpTypes = { "default" } },
        new QuantConfig { QuantTypes = { QuantType.Output }, QuantBits = 1, OpTypes = { "Hardtanh" } },
    };

    public override TensorQuantizer Create(LayerQuantPlan plan, QuantType type, Tensor? effectiveWeight, Device device) =>
        type == QuantType.Weight
            ? new BinaryWeightQuantizer(plan.Specs[type], _clipLatentWeights)
            : new BinaryActivationQuantizer(type, plan.Specs[type]);
}
