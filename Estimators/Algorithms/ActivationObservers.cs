using MLNetQuant.Core;
using MLNetQuant.Core.Observers;
using MLNetQuant.Training;

namespace MLNetQuant.Algorithms;

/// <summary>The observer a calibration method stands for, for one activation tensor.</summary>
internal static class ActivationObservers
{
    /// <exception cref="ArgumentException">A per-channel grid with a method that only works per tensor.</exception>
    public static QuantObserver Create(CalibrationMethod method, QuantSpec spec, double percentile) => method switch
    {
        CalibrationMethod.MinMax when spec.Scheme.IsPerChannel() => new PerChannelMinMaxObserver(spec),
        CalibrationMethod.MinMax => new MinMaxObserver(spec),
        CalibrationMethod.MovingAverageMinMax when spec.Scheme.IsPerChannel() => new MovingAveragePerChannelMinMaxObserver(spec),
        CalibrationMethod.MovingAverageMinMax => new MovingAverageMinMaxObserver(spec),
        _ when spec.Scheme.IsPerChannel() => throw new ArgumentException(
            $"{method} calibration is per tensor; use a per-tensor scheme, or MinMax / MovingAverageMinMax."),
        CalibrationMethod.Histogram => new HistogramObserver(spec),
        CalibrationMethod.Percentile => new PercentileObserver(spec, percentile),
        CalibrationMethod.Entropy => new EntropyObserver(spec),
        _ => throw new ArgumentOutOfRangeException(nameof(method), method, "Unknown calibration method."),
    };
}
