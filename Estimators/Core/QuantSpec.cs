namespace MLNetQuant.Core;

/// <summary>What grid a tensor is quantized to: signedness, bit width, scheme, range kind and (per-channel) the
/// channel axis. Immutable and validated on construction, so every observer and fake-quant built from it is valid.</summary>
public sealed record QuantSpec
{
    /// <summary>Creates and validates a specification.</summary>
    /// <param name="dtype">Signed or unsigned grid.</param>
    /// <param name="bits">Bit width, 1–16.</param>
    /// <param name="scheme">Per-tensor or per-channel, affine or symmetric.</param>
    /// <param name="rangeKind">Full (PyTorch default), narrow or reduced range.</param>
    /// <param name="channelAxis">For per-channel schemes: the channel dimension (0 for weights, 1 for activations).
    /// Ignored for per-tensor schemes.</param>
    /// <exception cref="ArgumentOutOfRangeException">Bits outside 1–16, or a negative channel axis.</exception>
    /// <exception cref="ArgumentException">A range with fewer than two values, or symmetric uint with reduced range
    /// (PyTorch refuses it too: its fixed zero-point would fall outside the range).</exception>
    public QuantSpec(QuantDtype dtype, int bits, QuantScheme scheme,
        QuantRangeKind rangeKind = QuantRangeKind.Full, int channelAxis = 0)
    {
        if (!Enum.IsDefined(dtype)) throw new ArgumentOutOfRangeException(nameof(dtype), dtype, "Unknown dtype.");
        if (!Enum.IsDefined(scheme)) throw new ArgumentOutOfRangeException(nameof(scheme), scheme, "Unknown scheme.");
        if (channelAxis < 0)
            throw new ArgumentOutOfRangeException(nameof(channelAxis), channelAxis, "The channel axis must be >= 0.");
        if (scheme.IsSymmetric() && dtype == QuantDtype.UInt && rangeKind == QuantRangeKind.ReduceRange)
            throw new ArgumentException(
                "Symmetric quantization with an unsigned reduced range is not supported (as in PyTorch).", nameof(rangeKind));
        Range = QuantRange.For(dtype, bits, rangeKind);
        Dtype = dtype;
        Bits = bits;
        Scheme = scheme;
        RangeKind = rangeKind;
        ChannelAxis = scheme.IsPerChannel() ? channelAxis : 0;
    }

    /// <summary>Signed or unsigned grid.</summary>
    public QuantDtype Dtype { get; }

    /// <summary>Bit width.</summary>
    public int Bits { get; }

    /// <summary>Per-tensor or per-channel, affine or symmetric.</summary>
    public QuantScheme Scheme { get; }

    /// <summary>Full, narrow or reduced range.</summary>
    public QuantRangeKind RangeKind { get; }

    /// <summary>The channel dimension for per-channel schemes (0 for per-tensor ones).</summary>
    public int ChannelAxis { get; }

    /// <summary>The integer interval values are clamped to.</summary>
    public QuantRange Range { get; }

    /// <summary>The zero-point of symmetric schemes: 0 for signed grids, the grid middle (qmin+qmax+1)/2 for unsigned
    /// ones (128 for uint8, as PyTorch and NNI 3).</summary>
    public long SymmetricZeroPoint => Dtype == QuantDtype.Int ? 0 : (Range.QMin + Range.QMax + 1) / 2;

    /// <summary>Weights as ONNX Runtime runs them fastest on x86: int8 symmetric per output channel (axis 0).</summary>
    public static QuantSpec Int8PerChannelSymmetricWeights { get; } =
        new(QuantDtype.Int, 8, QuantScheme.PerChannelSymmetric, QuantRangeKind.Full, channelAxis: 0);

    /// <summary>Activations as ONNX Runtime runs them fastest on x86: uint8 per-tensor affine.</summary>
    public static QuantSpec UInt8PerTensorAffineActivations { get; } =
        new(QuantDtype.UInt, 8, QuantScheme.PerTensorAffine);

    /// <inheritdoc />
    public override string ToString() =>
        $"{Dtype}{Bits} {Scheme} {RangeKind} {Range}" + (Scheme.IsPerChannel() ? $" axis {ChannelAxis}" : "");
}
