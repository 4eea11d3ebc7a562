using MLNetQuant.Core;
using static TorchSharp.torch;

namespace MLNetQuant.Algorithms;

/// <summary>The binarisation shared by BNN's weights and activations.</summary>
internal static class BinarySign
{
    /// <summary>Value <c>sign(x)</c> with 0 → +1; gradient 1 (or <paramref name="mask"/>) to <paramref name="x"/>.</summary>
    public static Tensor WithStraightThrough(Tensor x, Tensor? mask)
    {
        using var scope = NewDisposeScope();
        Tensor sign;
        using (no_grad()) sign = x.detach().ge(CachedScalars.Of(0)).to_type(x.dtype).mul(CachedScalars.Of(2)).sub(CachedScalars.One);
        var passThrough = x.sub(x.detach());
        if (mask is not null) passThrough = passThrough.mul(mask);
        return sign.add(passThrough, CachedScalars.One).MoveToOuterDisposeScope();
    }

    /// <summary>The ±1 grid: integers in [−1, 1] with scale 1.</summary>
    public static QParams GridQParams() =>
        FixedGridQParams.Create(1f, new QuantSpec(QuantDtype.Int, 2, QuantScheme.PerTensorSymmetric, QuantRangeKind.Narrow));
}
