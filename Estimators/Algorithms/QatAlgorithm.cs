using MLNetQuant.Configuration;
using static TorchSharp.torch;

namespace MLNetQuant.Algorithms;

/// <summary>Quantization-aware training (Jacob et al.; NNI's QAT_Quantizer): weights on the grid of their current
/// range, activations on the grid of an EMA of their batch ranges, masked straight-through gradients, BN folded.</summary>
internal sealed class QatAlgorithm : QuantAlgorithm
{
    public override QuantAlgorithmRules Rules => QuantAlgorithmRules.Qat;

    public override bool FoldsBatchNorm => true;

    public override IReadOnlyList<QuantConfig> DefaultConfig => WeightsAndInputs(8);

    public override TensorQuantizer Create(LayerQuantPlan plan, QuantType type, Tensor? effectiveWeight, Device device) =>
        type == QuantType.Weight
            ? new MinMaxWeightQuantizer(plan.Specs[type], plan.QuantStartStep)
            : new EmaActivationQuantizer(type, plan.Specs[type], plan.QuantStartStep);
}
