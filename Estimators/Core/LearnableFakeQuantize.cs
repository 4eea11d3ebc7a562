using TorchSharp;
using static TorchSharp.torch;

namespace MLNetQuant.Core;

/// <summary>Learnable-scale fake quantization (LSQ / LSQ+), with the gradients of PyTorch's
/// <c>_fake_quantize_learnable_per_tensor_affine</c> and <c>_per_channel_affine</c>: the input gets the masked
/// straight-through gradient; the scale gets <c>g · (round(x/s + z) − z − x/s)</c> inside the range and
/// <c>g · (bound − z)</c> outside it; the zero-point gets <c>−s · g</c> outside the range and 0 inside, with g the
/// gradient factor (LSQ's 1/√(numel · qmax)).
/// PyTorch's backward rounds the zero-point as trunc(z + 0.5) while its forward uses round-half-to-even; this is kept,
/// so gradients match PyTorch exactly. The backward's fused multiply-adds (z + x·(1/s) and (q − z)·s − x) are
/// reproduced by computing them in float64 and rounding once to float32.</summary>
public static class LearnableFakeQuantize
{
    /// <summary>The gradient factor PyTorch's _LearnableFakeQuantize uses with grad scaling: 1/√(numel · qmax), numel
    /// being the whole tensor's element count (also for per-channel).</summary>
    /// <exception cref="ArgumentOutOfRangeException">Non-positive <paramref name="numel"/> or <paramref name="qMax"/>.</exception>
    public static double GradFactor(long numel, long qMax)
    {
        if (numel <= 0) throw new ArgumentOutOfRangeException(nameof(numel), numel, "numel must be positive.");
        if (qMax <= 0) throw new ArgumentOutOfRangeException(nameof(qMax), qMax, "qMax must be positive.");
        return 1.0 / Math.Sqrt((double)numel * qMax);
    }

    /// <summary>Applies learnable fake quantization; gradients flow to <paramref name="x"/>, <paramref name="scale"/>
    /// and <paramref name="zeroPoint"/> (whichever require them).</summary>
    /// <param name="x">Floating-point input.</param>
    /// <param name="scale">float32 scale: one element (per-tensor) or one per channel along <paramref name="axis"/>.
    /// Keep it positive (PyTorch's module clamps it to eps before each call).</param>
    /// <param name="zeroPoint">float32 zero-point, same shape as <paramref name="scale"/>; rounded in the forward.</param>
    /// <param name="qMin">Smallest integer value.</param>
    /// <param name="qMax">Largest integer value.</param>
    /// <param name="gradFactor">Multiplies the scale and zero-point gradients (see <see cref="GradFactor"/>).</param>
    /// <param name="axis">Channel axis for per-channel parameters; null for per-tensor.</param>
    /// <exception cref="ArgumentException">Invalid range, shapes, dtypes or devices.</exception>
    public static Tensor Apply(Tensor x, Tensor scale, Tensor zeroPoint, long qMin, long qMax, double gradFactor,
        int? axis = null)
    {
        FakeQuantize.ValidateInput(x, qMin, qMax);
        if (axis is int channelAxis) TensorChecks.ThrowIfAxisOutOfRange(x, channelAxis, nameof(axis));
        FakeQuantize.ValidateParams(x, scale, zeroPoint, axis is int a ? x.shape[a] : 1);
        if (scale.dtype != ScalarType.Float32 || zeroPoint.dtype != ScalarType.Float32)
            throw new ArgumentException("scale and zeroPoint must be float32 tensors.", nameof(scale));
        if (!double.IsFinite(gradFactor) || gradFactor < 0)
            throw new ArgumentOutOfRangeException(nameof(gradFactor), gradFactor, "gradFactor must be finite and >= 0.");

        using var scope = NewDisposeScope();
        var shape = FakeQuantize.BroadcastShape(x, axis);
        var s = scale.detach().reshape(shape);
        var z = zeroPoint.detach().reshape(shape);
        var gf = (float)gradFactor;

        // Forward: the zero-point is rounded half to even and clamped, then ordinary fake quantization.
        var (low, high) = (CachedScalars.Of(qMin), CachedScalars.Of(qMax));
        var forward = FakeQuantize.Compute(x.detach(), s, z.round().clamp(low, high), qMin, qMax);

        Tensor inRange, scaleGrad, zeroPointGrad;
        using (no_grad())
        {
            var zBackward = z.add(CachedScalars.Of(0.5f), CachedScalars.One).clamp(low, high).trunc();
            var inverseScale = s.reciprocal();
            var x64 = x.detach().to_type(ScalarType.Float64);
            // q_b = rne(fma(x, 1/s, z_b)): the float64 product is exact, one rounding to float32, then rne.
            var qBackward = x64.mul(inverseScale.to_type(ScalarType.Float64)).add(zBackward.to_type(ScalarType.Float64), CachedScalars.One)
                .to_type(ScalarType.Float32).round();
            inRange = qBackward.ge(low).logical_and(qBackward.le(high));
            // Inside: fma(q_b − z_b, s, −x) · (1/s) · g.
            var error = qBackward.sub(zBackward).to_type(ScalarType.Float64).mul(s.to_type(ScalarType.Float64)).sub(x64)
                .to_type(ScalarType.Float32);
            var gradFactorScalar = CachedScalars.Of(gf);
            var inside = error.mul(inverseScale).mul(gradFactorScalar);
            // Outside: (bound − z_b) · g for the scale, −s · g for the zero-point.
            var bound = where(qBackward.lt(low), full_like(qBackward, low), full_like(qBackward, high));
            var outside = bound.sub(zBackward).mul(gradFactorScalar);
            scaleGrad = where(inRange, inside, outside);
            zeroPointGrad = where(inRange, zeros_like(qBackward), s.neg().mul(gradFactorScalar).expand_as(qBackward));
        }

        // Value = forward exactly; gradients = the coefficients above times the incoming gradient.
        var result = forward
            .add(x.sub(x.detach()).mul(inRange.to_type(x.dtype)), CachedScalars.One)
            .add(scale.reshape(shape).sub(s).mul(scaleGrad), CachedScalars.One)
            .add(zeroPoint.reshape(shape).sub(z).mul(zeroPointGrad), CachedScalars.One);
        return result.MoveToOuterDisposeScope();
    }
}
