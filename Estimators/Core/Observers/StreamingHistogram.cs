using TorchSharp;
using static TorchSharp.torch;

namespace MLNetQuant.Core.Observers;

/// <summary>A fixed-size histogram over a range that grows to cover every value seen. Memory stays at
/// <see cref="Bins"/> doubles however many batches are added: when a batch falls outside the current range, the range
/// is widened and the existing mass is redistributed onto the new bins in proportion to their overlap (mass assumed
/// uniform within a bin — PyTorch's HistogramObserver approximates the same by upsampling ×128).
/// Binning runs on the batch's device; only the <see cref="Bins"/> counts come back to the CPU.</summary>
public sealed class StreamingHistogram
{
    private double[] _counts;

    /// <summary>Creates an empty histogram with <paramref name="bins"/> bins.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="bins"/> below 2.</exception>
    public StreamingHistogram(int bins)
    {
        if (bins < 2) throw new ArgumentOutOfRangeException(nameof(bins), bins, "A histogram needs at least 2 bins.");
        _counts = new double[bins];
    }

    /// <summary>Number of bins.</summary>
    public int Bins => _counts.Length;

    /// <summary>Lower edge of the first bin (the smallest value seen).</summary>
    public double Min { get; private set; }

    /// <summary>Upper edge of the last bin (the largest value seen).</summary>
    public double Max { get; private set; }

    /// <summary>Total number of values added.</summary>
    public double Total { get; private set; }

    /// <summary>The bin counts (fractional after a range change).</summary>
    public IReadOnlyList<double> Counts => _counts;

    /// <summary>Width of one bin.</summary>
    public double BinWidth => (Max - Min) / Bins;

    /// <summary>Adds every element of a finite float tensor. Costs one device synchronisation for the batch range.</summary>
    /// <exception cref="ArgumentException">NaN or infinite values.</exception>
    public void Add(Tensor x)
    {
        using var scope = NewDisposeScope();
        var flat = x.detach().reshape(-1).to_type(ScalarType.Float32);
        if (flat.numel() == 0) return;
        var minMax = stack(new[] { flat.min(), flat.max() }).to_type(ScalarType.Float64).cpu().data<double>().ToArray();
        var (batchMin, batchMax) = (minMax[0], minMax[1]);
        if (!double.IsFinite(batchMin) || !double.IsFinite(batchMax))
            TensorChecks.ThrowIfNotFinite(flat, nameof(x));

        if (Total == 0)
        {
            Min = batchMin;
            Max = batchMax;
        }
        else if (batchMin < Min || batchMax > Max)
        {
            Widen(Math.Min(batchMin, Min), Math.Max(batchMax, Max));
        }

        var counts = Count(flat);
        for (var i = 0; i < counts.Length; i++) _counts[i] += counts[i];
        Total += flat.numel();
    }

    /// <summary>The value below which <paramref name="fraction"/> of the mass lies, interpolating linearly within a
    /// bin.</summary>
    /// <exception cref="ArgumentOutOfRangeException"><paramref name="fraction"/> outside [0, 1].</exception>
    /// <exception cref="InvalidOperationException">The histogram is empty.</exception>
    public double Quantile(double fraction)
    {
        if (!(fraction >= 0 && fraction <= 1))
            throw new ArgumentOutOfRangeException(nameof(fraction), fraction, "The fraction must be in [0, 1].");
        if (Total == 0) throw new InvalidOperationException("The histogram is empty.");
        var target = fraction * Total;
        var cumulative = 0.0;
        for (var i = 0; i < Bins; i++)
        {
            var next = cumulative + _counts[i];
            if (next >= target && _counts[i] > 0)
            {
                var within = (target - cumulative) / _counts[i];
                return Min + BinWidth * (i + Math.Clamp(within, 0, 1));
            }
            cumulative = next;
        }
        return Max;
    }

    private double[] Count(Tensor flat)
    {
        var result = new double[Bins];
        var width = Max - Min;
        if (width <= 0)
        {
            result[0] = flat.numel();
            return result;
        }
        // Bin index in float64 so that values at Max land in the last bin and rounding cannot misplace edge values.
        // Explicit scalars, disposed after use: an implicit temporary could be finalized during the native call.
        using var origin = Min.ToScalar();
        using var perUnit = (Bins / width).ToScalar();
        var index = flat.to_type(ScalarType.Float64).sub(origin).mul(perUnit).floor()
            .clamp(CachedScalars.Of(0), CachedScalars.Of(Bins - 1)).to_type(ScalarType.Int64);
        var counts = index.bincount(null, Bins).cpu().to_type(ScalarType.Float64).data<double>().ToArray();
        Array.Copy(counts, result, Bins);
        return result;
    }

    private void Widen(double newMin, double newMax)
    {
        var widened = new double[Bins];
        var oldWidth = BinWidth;
        var newWidth = (newMax - newMin) / Bins;
        for (var i = 0; i < Bins; i++)
        {
            var mass = _counts[i];
            if (mass == 0) continue;
            if (oldWidth <= 0)
            {
                // All earlier values were one number: they go to the bin that holds it.
                widened[Math.Clamp((int)((Min - newMin) / newWidth), 0, Bins - 1)] += mass;
                continue;
            }
            var begin = Min + i * oldWidth;
            var end = begin + oldWidth;
            var first = Math.Clamp((int)Math.Floor((begin - newMin) / newWidth), 0, Bins - 1);
            var last = Math.Clamp((int)Math.Floor((end - newMin) / newWidth), 0, Bins - 1);
            for (var j = first; j <= last; j++)
            {
                var overlap = Math.Min(end, newMin + (j + 1) * newWidth) - Math.Max(begin, newMin + j * newWidth);
                if (overlap > 0) widened[j] += mass * overlap / oldWidth;
            }
        }
        // Keep the total exact despite floating-point overlap sums.
        var sum = widened.Sum();
        var before = _counts.Sum();
        if (sum > 0) for (var j = 0; j < Bins; j++) widened[j] *= before / sum;
        _counts = widened;
        Min = newMin;
        Max = newMax;
    }
}
