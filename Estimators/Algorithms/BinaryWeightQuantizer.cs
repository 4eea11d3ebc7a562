using MLNetQuant.Core;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace MLNetQuant.Algorithms;

/// <summary>BNN weights: <c>sign(w)</c> with 0 → +1, plain straight-through gradient to the latent weight, and the
/// latent weight clipped in place to [−1, 1] after every optimizer step (NNI v2's clip is a no-op: §6 [BUG]).</summary>
internal sealed class BinaryWeightQuantizer : TensorQuantizer
{
    private readonly bool _clipLatentWeights;

    public BinaryWeightQuantizer(QuantSpec spec, bool clipLatentWeights) : base(QuantType.Weight, spec) =>
        _clipLatentWeights = clipLatentWeights;

    public override Tensor Quantize(Tensor x, QuantContext context) => BinarySign.WithStraightThrough(x, mask: null);

    public override void AfterOptimizerStep(Parameter? latentWeight)
    {
        if (!_clipLatentWeights || latentWeight is null) return;
        using var _ = no_grad();
        latentWeight.clamp_(-1, 1);
    }

    public override QParams CurrentQParams() => BinarySign.GridQParams();
}
