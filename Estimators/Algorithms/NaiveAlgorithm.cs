using MLNetQuant.Configuration;
using static TorchSharp.torch;

namespace MLNetQuant.Algorithms;

/// <summary>Naive weight-only quantization: each weight rounded (half to even, not truncated as NNI v2 does) to the
/// grid of its own range, per tensor or per channel; no data, no training. BN is folded first so the rounded weight
/// is the one inference uses.</summary>
internal sealed class NaiveAlgorithm : QuantAlgorithm
{
    public override QuantAlgorithmRules Rules => QuantAlgorithmRules.Naive;

    public override bool FoldsBatchNorm => true;

    public override IReadOnlyList<QuantConfig> DefaultConfig => new[]
    {
        new QuantConfig { QuantTypes = { QuantType.Weight }, QuantBits = 8, OpTypes = { "default" } },
    };

    public override TensorQuantizer Create(LayerQuantPlan plan, QuantType type, Tensor? effectiveWeight, Device device) =>
        new MinMaxWeightQuantizer(plan.Specs[type]);
}
