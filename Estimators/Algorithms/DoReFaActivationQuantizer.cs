using MLNetQuant.Core;
using static TorchSharp.torch;

namespace MLNetQuant.Algorithms;

/// <summary>DoReFa-Net's k-bit activations (beyond NNI v2, which rejects them): <c>x̂ = round(clamp(x, 0, 1)·n)/n</c>
/// with <c>n = 2^k − 1</c>; the gradient passes straight through the rounding and is zero where the clamp is active.
/// The grid is unsigned k-bit with scale 1/n and zero-point 0.</summary>
internal sealed class DoReFaActivationQuantizer : TensorQuantizer
{
    private readonly int _levels;

    public DoReFaActivationQuantizer(QuantType type, QuantSpec spec) : base(type, spec) => _levels = (1 << spec.Bits) - 1;

    public override Tensor Quantize(Tensor x, QuantContext context)
    {
        using var scope = NewDisposeScope();
        var clamped = x.clamp(CachedScalars.Of(0), CachedScalars.One);
        Tensor rounded;
        using (no_grad()) rounded = clamped.detach().mul(CachedScalars.Of(_levels)).round().div(CachedScalars.Of(_levels));
        return clamped.add(rounded.sub(clamped.detach()), CachedScalars.One).MoveToOuterDisposeScope();
    }

    public override QParams CurrentQParams() =>
        FixedGridQParams.Create(1f / _levels, new QuantSpec(QuantDtype.UInt, Spec.Bits, QuantScheme.PerTensorAffine));
}
