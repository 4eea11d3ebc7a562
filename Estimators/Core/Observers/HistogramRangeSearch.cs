namespace MLNetQuant.Core.Observers;

/// <summary>PyTorch's HistogramObserver range search (_non_linear_param_search and _compute_quantization_error),
/// in float64 on the CPU over the histogram's bins.</summary>
internal static class HistogramRangeSearch
{
    private const double StepSize = 1e-5;

    /// <summary>Shrinks [min, max] greedily from whichever side frees more bins per step, stopping at the first step
    /// that increases the L2 error of quantizing the histogram onto <paramref name="destinationBins"/> uniform bins.</summary>
    public static (double Min, double Max) MinimizeL2Error(StreamingHistogram histogram, long destinationBins)
    {
        var counts = histogram.Counts;
        var bins = counts.Count;
        if (histogram.Max - histogram.Min <= 0) return (histogram.Min, histogram.Max);

        var cumulative = new double[bins];
        var running = 0.0;
        for (var i = 0; i < bins; i++) cumulative[i] = running += counts[i];
        var total = running;

        var alpha = 0.0;
        var beta = 1.0;
        var startBin = 0;
        var endBin = bins - 1;
        var bestNorm = double.PositiveInfinity;
        while (alpha < beta)
        {
            var nextAlpha = alpha + StepSize;
            var nextBeta = beta - StepSize;
            var l = startBin;
            var r = endBin;
            while (l < endBin && cumulative[l] < nextAlpha * total) l++;
            while (r > startBin && cumulative[r] > nextBeta * total) r--;

            var nextStart = startBin;
            var nextEnd = endBin;
            if (l - startBin > endBin - r)
            {
                nextStart = l;
                alpha = nextAlpha;
            }
            else
            {
                nextEnd = r;
                beta = nextBeta;
            }
            if (nextStart == startBin && nextEnd == endBin) continue;

            var norm = QuantizationError(histogram, nextStart, nextEnd, destinationBins);
            if (norm > bestNorm) break;
            bestNorm = norm;
            startBin = nextStart;
            endBin = nextEnd;
        }
        var width = histogram.BinWidth;
        return (histogram.Min + width * startBin, histogram.Min + width * (endBin + 1));
    }

    /// <summary>L2 error of mapping the source bins onto <paramref name="destinationBins"/> uniform bins spanning source
    /// bins [start, end], integrating density · (Δ_end³ − Δ_begin³) / 3 per piece.</summary>
    private static double QuantizationError(StreamingHistogram histogram, int start, int end, long destinationBins)
    {
        var counts = histogram.Counts;
        var binWidth = histogram.BinWidth;
        var dstWidth = binWidth * (end - start + 1) / destinationBins;
        if (dstWidth == 0) return 0;
        var half = dstWidth / 2;
        var fullBinNorm = (half * half * half - -half * -half * -half) / 3;
        var norm = 0.0;
        for (var i = 0; i < counts.Count; i++)
        {
            var count = counts[i];
            if (count == 0) continue;
            var density = count / binWidth;
            var srcBegin = (i - start) * binWidth;
            var srcEnd = srcBegin + binWidth;
            var dstOfBegin = Math.Clamp(Math.Floor(srcBegin / dstWidth), 0, destinationBins - 1);
            var dstOfEnd = Math.Clamp(Math.Floor(srcEnd / dstWidth), 0, destinationBins - 1);

            var deltaBegin = srcBegin - (dstOfBegin + 0.5) * dstWidth;
            norm += density * (half * half * half - deltaBegin * deltaBegin * deltaBegin) / 3;
            norm += (dstOfEnd - dstOfBegin - 1) * density * fullBinNorm;
            var deltaEnd = srcEnd - (dstOfEnd * dstWidth + half);
            norm += density * (deltaEnd * deltaEnd * deltaEnd - -half * -half * -half) / 3;
        }
        return norm;
    }
}
