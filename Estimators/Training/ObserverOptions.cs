using MLNetQuant.Algorithms;

namespace MLNetQuant.Training;

/// <summary>Post-training calibration (NNI's ObserverQuantizer): a trained model, a few hundred calibration rows,
/// no training. Weights take the range of their values; activations the range the calibration method picks.</summary>
public sealed class ObserverOptions : QuantizationOptions
{
    /// <summary>How activation ranges are chosen.</summary>
    public CalibrationMethod Calibration { get; set; } = CalibrationMethod.Histogram;

    /// <summary>For <see cref="CalibrationMethod.Percentile"/>: the central mass kept, in percent (99.99 cuts 0.005 % of
    /// the values off each tail).</summary>
    public double Percentile { get; set; } = 99.99;

    /// <summary>Rows read for calibration (the first ones of the data view); 0 reads all.</summary>
    public int CalibrationRows { get; set; } = 2_000;

    internal override QuantAlgorithm CreateAlgorithm() => new ObserverAlgorithm(Calibration, Percentile);

    internal override void Validate()
    {
        base.Validate();
        if (!Enum.IsDefined(Calibration))
            throw new ArgumentOutOfRangeException(nameof(Calibration), Calibration, "Unknown calibration method.");
        if (!(Percentile > 0 && Percentile <= 100))
            throw new ArgumentOutOfRangeException(nameof(Percentile), Percentile, "Percentile must be in (0, 100].");
        if (CalibrationRows < 0)
            throw new ArgumentOutOfRangeException(nameof(CalibrationRows), CalibrationRows, "CalibrationRows must be >= 0.");
    }
}
