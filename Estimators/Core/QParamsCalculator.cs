using TorchSharp;
using static TorchSharp.torch;

namespace MLNetQuant.Core;

/// <summary>Scales and zero-points from observed ranges, with PyTorch's semantics
/// (torch.ao.quantization.observer._calculate_qparams): the range always includes 0; symmetric scale
/// absmax / ((qmax - qmin) / 2) with zero-point 0 (int) or the grid middle (uint); affine scale
/// (max - min) / (qmax - qmin) with zero-point clamp(qmin - rne(min / scale)); every scale floored at float32 eps.
/// All arithmetic is float32 on the tensors' device, as in PyTorch.</summary>
public static class QParamsCalculator
{
    /// <summary>float32 machine epsilon, 2^-23: the smallest scale ever produced, so a constant or all-zero tensor
    /// gets a finite scale instead of a division by zero (NNI v2's QAT has no such floor and produces NaN).</summary>
    public const float Eps = 1.1920928955078125e-07f;

    /// <summary>Computes qparams from a per-tensor or per-channel range.</summary>
    /// <param name="minVal">Observed minimum: a scalar or one-element tensor (per-tensor), or shape [channels].</param>
    /// <param name="maxVal">Observed maximum, same shape as <paramref name="minVal"/>.</param>
    /// <param name="spec">The target grid.</param>
    /// <exception cref="ArgumentException">Mismatched shapes, a non-finite bound, or minVal &gt; maxVal anywhere.</exception>
    public static QParams FromMinMax(Tensor minVal, Tensor maxVal, QuantSpec spec)
    {
        ArgumentNullException.ThrowIfNull(minVal);
        ArgumentNullException.ThrowIfNull(maxVal);
        ArgumentNullException.ThrowIfNull(spec);
        if (!minVal.shape.SequenceEqual(maxVal.shape))
            throw new ArgumentException(
                $"minVal [{string.Join(",", minVal.shape)}] and maxVal [{string.Join(",", maxVal.shape)}] differ in shape.",
                nameof(maxVal));
        if (!spec.Scheme.IsPerChannel() && minVal.numel() != 1)
            throw new ArgumentException($"A per-tensor scheme needs a single min and max, got {minVal.numel()}.", nameof(minVal));
        using var scope = NewDisposeScope();
        var min = minVal.to_type(ScalarType.Float32).reshape(-1);
        var max = maxVal.to_type(ScalarType.Float32).reshape(-1);
        TensorChecks.ThrowIfNotFinite(min, nameof(minVal));
        TensorChecks.ThrowIfNotFinite(max, nameof(maxVal));
        if (min.gt(max).any().item<bool>())
            throw new ArgumentException(
                $"minVal must not exceed maxVal; got min {Describe(min)} and max {Describe(max)}.", nameof(minVal));
        var result = Compute(min, max, spec);
        result.Scale.MoveToOuterDisposeScope();
        result.ZeroPoint.MoveToOuterDisposeScope();
        return result;
    }

    /// <summary>Computes qparams from a per-tensor range given as numbers.</summary>
    /// <exception cref="ArgumentException">A non-finite bound, or <paramref name="min"/> &gt; <paramref name="max"/>.</exception>
    public static QParams FromMinMax(float min, float max, QuantSpec spec)
    {
        using var minTensor = tensor(new[] { min });
        using var maxTensor = tensor(new[] { max });
        return FromMinMax(minTensor, maxTensor, spec);
    }

    /// <summary>The unchecked computation on 1-D float32 tensors (callers have validated them): used on hot paths
    /// such as QAT, where a device synchronisation per step would cost more than the math.</summary>
    internal static QParams Compute(Tensor min, Tensor max, QuantSpec spec)
    {
        var range = spec.Range;
        using var zero = zeros(1, dtype: ScalarType.Float32, device: min.device);
        using var minNeg = minimum(min, zero);
        using var maxPos = maximum(max, zero);
        Tensor scale;
        Tensor zeroPoint;
        if (spec.Scheme.IsSymmetric())
        {
            using var absMax = maximum(minNeg.neg(), maxPos);
            using var halfSpan = full(1, CachedScalars.Of((range.QMax - range.QMin) / 2.0), dtype: ScalarType.Float32, device: min.device);
            using var raw = absMax.div(halfSpan);
            scale = raw.clamp_min(CachedScalars.Of(Eps));
            zeroPoint = full(min.shape, CachedScalars.OfInt(spec.SymmetricZeroPoint), dtype: ScalarType.Int64, device: min.device);
        }
        else
        {
            using var span = full(1, CachedScalars.Of((float)(range.QMax - range.QMin)), dtype: ScalarType.Float32, device: min.device);
            using var raw = maxPos.sub(minNeg).div(span);
            scale = raw.clamp_min(CachedScalars.Of(Eps));
            using var steps = minNeg.div(scale).round();
            zeroPoint = steps.neg().add(CachedScalars.Of(range.QMin), CachedScalars.One).clamp(CachedScalars.Of(range.QMin), CachedScalars.Of(range.QMax))
                .to_type(ScalarType.Int64);
        }
        return new QParams(scale, zeroPoint, spec);
    }

    private static string Describe(Tensor t) =>
        t.numel() == 1 ? t.item<float>().ToString("R") : $"[{string.Join(", ", t.cpu().data<float>().ToArray().Take(8))}…]";
}
