using System.Globalization;

namespace MLNetQuant.OnnxPtq;

/// <summary>How far the quantized model's validation metric may fall behind the float model's: an absolute amount in
/// the metric's own units (0.003 of ML.NET's MicroAccuracy is 0.3 percentage points) or a share of the float value.</summary>
public sealed record AccuracyTolerance
{
    private AccuracyTolerance(double value, bool relative)
    {
        if (!(value >= 0) || double.IsInfinity(value))
            throw new ArgumentOutOfRangeException(nameof(value), value, "A tolerance must be finite and >= 0.");
        Value = value;
        IsRelative = relative;
    }

    /// <summary>The amount (metric units) or share (0.01 = 1 %).</summary>
    public double Value { get; }

    /// <summary>Whether <see cref="Value"/> is a share of the float metric.</summary>
    public bool IsRelative { get; }

    /// <summary>At most <paramref name="amount"/> worse, in the metric's units.</summary>
    public static AccuracyTolerance Absolute(double amount) => new(amount, relative: false);

    /// <summary>At most <paramref name="share"/> × |float metric| worse (0.01 = 1 %).</summary>
    public static AccuracyTolerance Relative(double share) => new(share, relative: true);

    /// <summary>The worst acceptable metric, given the float model's.</summary>
    internal double Limit(double floatMetric, bool higherIsBetter)
    {
        var allowed = IsRelative ? Math.Abs(floatMetric) * Value : Value;
        return higherIsBetter ? floatMetric - allowed : floatMetric + allowed;
    }

    /// <inheritdoc />
    public override string ToString() => IsRelative
        ? $"{(Value * 100).ToString("0.###", CultureInfo.InvariantCulture)} % relative"
        : $"{Value.ToString("0.######", CultureInfo.InvariantCulture)} absolute";
}
