using TorchSharp;
using static TorchSharp.torch;

namespace MLNetQuant.Core;

/// <summary>Fake quantization with PyTorch's exact numerics: <c>x̂ = (clamp(z + rne(x · (1/s)), qmin, qmax) − z) · s</c>
/// in float32, and a straight-through gradient masked where the rounded, unclamped value leaves [qmin, qmax].
/// Built from elementwise float32 tensor operations in the kernel's order (multiply by the float32 reciprocal, round
/// half to even, add the zero-point, clamp, subtract, multiply), so results are bit-identical to PyTorch on CPU and
/// CUDA alike. (TorchSharp 0.107 declares torch.fake_quantize_* but marks them "not implemented".)</summary>
public static class FakeQuantize
{
    /// <summary>Per-tensor fake quantization with scale and zero-point given as numbers.</summary>
    /// <param name="x">Floating-point input.</param>
    /// <param name="scale">Positive, finite scale.</param>
    /// <param name="zeroPoint">Zero-point within [<paramref name="qMin"/>, <paramref name="qMax"/>].</param>
    /// <param name="qMin">Smallest integer value.</param>
    /// <param name="qMax">Largest integer value.</param>
    /// <exception cref="ArgumentException">Invalid range, scale or zero-point, or a non-floating-point input.</exception>
    public static Tensor PerTensor(Tensor x, float scale, long zeroPoint, long qMin, long qMax)
    {
        ValidateInput(x, qMin, qMax);
        if (!(scale > 0) || !float.IsFinite(scale))
            throw new ArgumentOutOfRangeException(nameof(scale), scale, "The scale must be positive and finite.");
        if (zeroPoint < qMin || zeroPoint > qMax)
            throw new ArgumentOutOfRangeException(nameof(zeroPoint), zeroPoint, $"The zero-point must lie in [{qMin}, {qMax}].");
        using var scaleTensor = full(1, scale, dtype: ScalarType.Float32, device: x.device);
        using var zeroPointTensor = full(1, zeroPoint, dtype: ScalarType.Float32, device: x.device);
        return Compute(x, scaleTensor, zeroPointTensor, qMin, qMax);
    }

    /// <summary>Per-tensor fake quantization with one-element scale and zero-point tensors (they stay on the device,
    /// no synchronisation).</summary>
    /// <exception cref="ArgumentException">Invalid range, shapes, dtypes or devices.</exception>
    public static Tensor PerTensor(Tensor x, Tensor scale, Tensor zeroPoint, long qMin, long qMax)
    {
        ValidateInput(x, qMin, qMax);
        ValidateParams(x, scale, zeroPoint, expectedLength: 1);
        using var scope = NewDisposeScope();
        var shape = BroadcastShape(x, axis: null);
        return Compute(x, scale.reshape(shape), zeroPoint.reshape(shape), qMin, qMax).MoveToOuterDisposeScope();
    }

    /// <summary>Per-channel fake quantization along <paramref name="axis"/>, one scale and zero-point per channel.</summary>
    /// <exception cref="ArgumentOutOfRangeException">An axis the input does not have.</exception>
    /// <exception cref="ArgumentException">Invalid range, shapes, dtypes or devices.</exception>
    public static Tensor PerChannel(Tensor x, Tensor scale, Tensor zeroPoint, int axis, long qMin, long qMax)
    {
        ValidateInput(x, qMin, qMax);
        TensorChecks.ThrowIfAxisOutOfRange(x, axis, nameof(axis));
        ValidateParams(x, scale, zeroPoint, expectedLength: x.shape[axis]);
        using var scope = NewDisposeScope();
        var shape = BroadcastShape(x, axis);
        return Compute(x, scale.reshape(shape), zeroPoint.reshape(shape), qMin, qMax).MoveToOuterDisposeScope();
    }

    /// <summary>Fake-quantizes <paramref name="x"/> with parameters from an observer or the calculator, per tensor or
    /// per channel as their spec says.</summary>
    public static Tensor Apply(Tensor x, QParams qParams)
    {
        ArgumentNullException.ThrowIfNull(qParams);
        var range = qParams.Spec.Range;
        return qParams.Spec.Scheme.IsPerChannel()
            ? PerChannel(x, qParams.Scale, qParams.ZeroPoint, qParams.Spec.ChannelAxis, range.QMin, range.QMax)
            : PerTensor(x, qParams.Scale, qParams.ZeroPoint, range.QMin, range.QMax);
    }

    /// <summary>The kernel. <paramref name="scale"/> and <paramref name="zeroPoint"/> broadcast against
    /// <paramref name="x"/>; the zero-point holds integers (any dtype).</summary>
    internal static Tensor Compute(Tensor x, Tensor scale, Tensor zeroPoint, long qMin, long qMax)
    {
        using var scope = NewDisposeScope();
        Tensor output, inRange;
        using (no_grad())
        {
            var scale32 = scale.detach().to_type(ScalarType.Float32);
            var zero = zeroPoint.detach().to_type(ScalarType.Float32);
            var rounded = x.detach().to_type(ScalarType.Float32).mul(scale32.reciprocal()).round().add(zero, CachedScalars.One);
            var clamped = rounded.clamp(CachedScalars.Of(qMin), CachedScalars.Of(qMax));
            inRange = clamped.eq(rounded); // one pass instead of qmin <= q && q <= qmax
            output = clamped.sub(zero).mul(scale32).to_type(x.dtype);
        }
        // Straight-through estimator: the value is `output` exactly (x − x = 0), the gradient is the incoming one
        // where q was in range (where() routes it to x there and to the detached copy elsewhere).
        var result = x.requires_grad
            ? output.add(where(inRange, x, x.detach()).sub(x.detach()), CachedScalars.One)
            : output;
        return result.MoveToOuterDisposeScope();
    }

    /// <summary>The shape that makes per-tensor (axis null) or per-channel parameters broadcast against
    /// <paramref name="x"/>: all ones, except the channel count at <paramref name="axis"/>.</summary>
    internal static long[] BroadcastShape(Tensor x, int? axis)
    {
        var shape = Enumerable.Repeat(1L, (int)Math.Max(x.dim(), 1)).ToArray();
        if (axis is int a) shape[a] = x.shape[a];
        return shape;
    }

    internal static void ValidateInput(Tensor x, long qMin, long qMax)
    {
        ArgumentNullException.ThrowIfNull(x);
        TensorChecks.ThrowIfNotFloatingPoint(x, nameof(x));
        if (qMin >= qMax)
            throw new ArgumentException($"qMin must be below qMax; got [{qMin}, {qMax}].", nameof(qMin));
        if (qMax - qMin >= 1L << QuantRange.MaxBits)
            throw new ArgumentException(
                $"[{qMin}, {qMax}] is wider than {QuantRange.MaxBits} bits.", nameof(qMax));
    }

    private static bool SameDevice(Tensor a, Tensor b) =>
        a.device_type == b.device_type && a.device_index == b.device_index;

    internal static void ValidateParams(Tensor x, Tensor scale, Tensor zeroPoint, long expectedLength)
    {
        ArgumentNullException.ThrowIfNull(scale);
        ArgumentNullException.ThrowIfNull(zeroPoint);
        if (scale.numel() != expectedLength || scale.dim() > 1)
            throw new ArgumentException(
                $"scale must hold {expectedLength} value(s) in at most one dimension; got shape [{string.Join(",", scale.shape)}].",
                nameof(scale));
        if (!zeroPoint.shape.SequenceEqual(scale.shape))
            throw new ArgumentException(
                $"zeroPoint shape [{string.Join(",", zeroPoint.shape)}] differs from scale shape [{string.Join(",", scale.shape)}].",
                nameof(zeroPoint));
        if (!SameDevice(scale, x) || !SameDevice(zeroPoint, x))
            throw new ArgumentException(
                $"scale ({scale.device}) and zeroPoint ({zeroPoint.device}) must be on the input's device ({x.device}).",
                nameof(scale));
    }
}
