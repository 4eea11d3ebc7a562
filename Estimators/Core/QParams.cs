using TorchSharp;
using static TorchSharp.torch;

namespace MLNetQuant.Core;

/// <summary>Quantization parameters of one tensor: float32 scales and int64 zero-points, one element for per-tensor
/// schemes and one per channel otherwise, kept on the device they were computed on.</summary>
public sealed class QParams : IDisposable
{
    /// <summary>Wraps scale and zero-point tensors; they must have the same single dimension.</summary>
    /// <exception cref="ArgumentException">When the shapes or dtypes do not fit <paramref name="spec"/>.</exception>
    public QParams(Tensor scale, Tensor zeroPoint, QuantSpec spec)
    {
        ArgumentNullException.ThrowIfNull(scale);
        ArgumentNullException.ThrowIfNull(zeroPoint);
        ArgumentNullException.ThrowIfNull(spec);
        if (scale.dtype != ScalarType.Float32)
            throw new ArgumentException($"scale must be float32, not {scale.dtype}.", nameof(scale));
        if (scale.dim() != 1 || zeroPoint.dim() != 1 || scale.shape[0] != zeroPoint.shape[0])
            throw new ArgumentException(
                $"scale and zeroPoint must be 1-D of the same length; got [{string.Join(",", scale.shape)}] and " +
                $"[{string.Join(",", zeroPoint.shape)}].", nameof(zeroPoint));
        if (!spec.Scheme.IsPerChannel() && scale.shape[0] != 1)
            throw new ArgumentException($"A per-tensor scheme needs one scale, got {scale.shape[0]}.", nameof(scale));
        Scale = scale;
        ZeroPoint = zeroPoint.dtype == ScalarType.Int64 ? zeroPoint : zeroPoint.to_type(ScalarType.Int64);
        Spec = spec;
    }

    /// <summary>Float32 scales, shape [1] (per-tensor) or [channels].</summary>
    public Tensor Scale { get; }

    /// <summary>Int64 zero-points, same shape as <see cref="Scale"/>.</summary>
    public Tensor ZeroPoint { get; }

    /// <summary>The grid these parameters belong to.</summary>
    public QuantSpec Spec { get; }

    /// <summary>The scales copied to the CPU.</summary>
    public float[] ScaleValues() => Scale.cpu().data<float>().ToArray();

    /// <summary>The zero-points copied to the CPU.</summary>
    public long[] ZeroPointValues() => ZeroPoint.cpu().data<long>().ToArray();

    /// <summary>Copies the parameters to <paramref name="device"/>.</summary>
    public QParams To(Device device) => new(Scale.to(device), ZeroPoint.to(device), Spec);

    /// <inheritdoc />
    public void Dispose()
    {
        Scale.Dispose();
        ZeroPoint.Dispose();
    }

    /// <inheritdoc />
    public override string ToString()
    {
        var scales = ScaleValues();
        var zeroPoints = ZeroPointValues();
        return scales.Length == 1
            ? $"scale {scales[0]:R}, zero-point {zeroPoints[0]} ({Spec})"
            : $"{scales.Length} channels, scale [{scales.Min():G4}, {scales.Max():G4}] ({Spec})";
    }
}
