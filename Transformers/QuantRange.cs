namespace MLNetQuant;

/// <summary>The integer interval [<see cref="QMin"/>, <see cref="QMax"/>] that quantized values are clamped to.</summary>
public readonly record struct QuantRange
{
    /// <summary>Smallest bit width supported.</summary>
    public const int MinBits = 1;

    /// <summary>Largest bit width supported.</summary>
    public const int MaxBits = 16;

    /// <summary>Creates a range from explicit bounds; it must contain 0 and hold at least two values
    /// (PyTorch's rule for custom ranges).</summary>
    /// <exception cref="ArgumentException">When the bounds do not satisfy qmin ≤ 0 ≤ qmax and qmin &lt; qmax.</exception>
    public QuantRange(long qMin, long qMax)
    {
        if (qMin > 0 || qMax < 0)
            throw new ArgumentException($"A quantized range must contain 0; got [{qMin}, {qMax}].", nameof(qMin));
        if (qMin >= qMax)
            throw new ArgumentException($"A quantized range needs qmin < qmax; got [{qMin}, {qMax}].", nameof(qMax));
        QMin = qMin;
        QMax = qMax;
    }

    /// <summary>Lower bound (inclusive).</summary>
    public long QMin { get; }

    /// <summary>Upper bound (inclusive).</summary>
    public long QMax { get; }

    /// <summary>Number of representable values, qmax - qmin + 1.</summary>
    public long Levels => QMax - QMin + 1;

    /// <summary>The range of a <paramref name="bits"/>-bit grid of the given signedness and kind.</summary>
    /// <param name="dtype">Signed or unsigned grid.</param>
    /// <param name="bits">Bit width, 1 to 16.</param>
    /// <param name="kind">Full, narrow or reduced range.</param>
    /// <exception cref="ArgumentOutOfRangeException">When <paramref name="bits"/> is outside 1–16.</exception>
    /// <exception cref="ArgumentException">When the combination leaves fewer than two values (e.g. 1-bit narrow int).</exception>
    public static QuantRange For(QuantDtype dtype, int bits, QuantRangeKind kind = QuantRangeKind.Full)
    {
        if (bits < MinBits || bits > MaxBits)
            throw new ArgumentOutOfRangeException(nameof(bits), bits, $"bits must be between {MinBits} and {MaxBits}.");
        long qMin, qMax;
        if (dtype == QuantDtype.Int)
        {
            var half = 1L << (bits - 1);
            (qMin, qMax) = kind switch
            {
                QuantRangeKind.Full => (-half, half - 1),
                QuantRangeKind.Narrow => (-(half - 1), half - 1),
                QuantRangeKind.ReduceRange => (-(half / 2), half / 2 - 1),
                _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown range kind."),
            };
        }
        else
        {
            var levels = 1L << bits;
            (qMin, qMax) = kind switch
            {
                QuantRangeKind.Full => (0L, levels - 1),
                QuantRangeKind.Narrow => (0L, levels - 2),
                QuantRangeKind.ReduceRange => (0L, levels / 2 - 1),
                _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "Unknown range kind."),
            };
        }
        if (qMin >= qMax)
            throw new ArgumentException(
                $"A {bits}-bit {dtype} grid with the {kind} range holds fewer than two values ([{qMin}, {qMax}]).",
                nameof(kind));
        return new QuantRange(qMin, qMax);
    }

    /// <inheritdoc />
    public override string ToString() => $"[{QMin}, {QMax}]";
}
