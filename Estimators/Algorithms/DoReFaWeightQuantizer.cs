using MLNetQuant.Core;
using static TorchSharp.torch;

namespace MLNetQuant.Algorithms;

/// <summary>DoReFa-Net's k-bit weights: <c>u = tanh(w) / (2·max|tanh(w)|) + ½</c>, <c>q = round(u·n)/n</c> with
/// <c>n = 2^k − 1</c>, <c>ŵ = 2q − 1</c>. Only the rounding is straight-through: tanh and the max-normalisation are
/// differentiated, as in the paper and NNI 3 (NNI v2 straight-throughs the whole transform). The values lie on the
/// grid (2i − n)/n, i.e. integers in [−n, n] with scale 1/n.</summary>
internal sealed class DoReFaWeightQuantizer : TensorQuantizer
{
    private readonly int _levels;

    public DoReFaWeightQuantizer(QuantSpec spec) : base(QuantType.Weight, spec) => _levels = (1 << spec.Bits) - 1;

    public override Tensor Quantize(Tensor x, QuantContext context)
    {
        using var scope = NewDisposeScope();
        var t = x.tanh();
        var maxAbs = t.abs().max().clamp_min(CachedScalars.Of(QParamsCalculator.Eps));
        var u = t.div(maxAbs.mul(CachedScalars.Of(2))).add(CachedScalars.Of(0.5), CachedScalars.One);
        Tensor rounded;
        using (no_grad()) rounded = u.detach().mul(CachedScalars.Of(_levels)).round().div(CachedScalars.Of(_levels));
        var q = u.add(rounded.sub(u.detach()), CachedScalars.One);
        return q.mul(CachedScalars.Of(2)).sub(CachedScalars.One).MoveToOuterDisposeScope();
    }

    public override QParams CurrentQParams() =>
        FixedGridQParams.Create(1f / _levels, new QuantSpec(QuantDtype.Int, Spec.Bits + 1, QuantScheme.PerTensorSymmetric,
            QuantRangeKind.Narrow));
}
