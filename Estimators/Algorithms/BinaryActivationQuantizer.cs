using MLNetQuant.Core;
using static TorchSharp.torch;

namespace MLNetQuant.Algorithms;

/// <summary>BNN activations: <c>sign(y)</c> with 0 → +1; the gradient passes where |y| ≤ 1 and is zero elsewhere
/// (Hubara et al.'s straight-through estimator with cancellation).</summary>
internal sealed class BinaryActivationQuantizer : TensorQuantizer
{
    public BinaryActivationQuantizer(QuantType type, QuantSpec spec) : base(type, spec) { }

    public override Tensor Quantize(Tensor x, QuantContext context)
    {
        using var scope = NewDisposeScope();
        Tensor mask;
        using (no_grad()) mask = x.detach().abs().le(CachedScalars.One).to_type(x.dtype);
        return BinarySign.WithStraightThrough(x, mask).MoveToOuterDisposeScope();
    }

    public override QParams CurrentQParams() => BinarySign.GridQParams();
}
