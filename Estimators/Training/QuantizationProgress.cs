namespace MLNetQuant.Training;

/// <summary>A progress report of training or calibration, sent every few steps and at the end of each epoch.</summary>
/// <param name="Phase">"train", "validate" or "calibrate".</param>
/// <param name="Epoch">1-based epoch (1 for calibration).</param>
/// <param name="Epochs">Epochs in all.</param>
/// <param name="Step">Optimizer steps (training) or batches (calibration) so far in this run.</param>
/// <param name="Examples">Rows processed in this epoch so far.</param>
/// <param name="Loss">Mean loss over this epoch so far (NaN for calibration).</param>
/// <param name="Accuracy">Fraction of correct predictions this epoch so far (NaN for regression and calibration).</param>
/// <param name="ExamplesPerSecond">Throughput of this epoch so far.</param>
/// <param name="Elapsed">Time since the run started.</param>
/// <param name="EndOfEpoch">True for the report that closes an epoch (or a validation pass).</param>
public sealed record QuantizationProgress(
    string Phase,
    int Epoch,
    int Epochs,
    long Step,
    long Examples,
    double Loss,
    double Accuracy,
    double ExamplesPerSecond,
    TimeSpan Elapsed,
    bool EndOfEpoch)
{
    /// <inheritdoc />
    public override string ToString() =>
        $"{Phase} epoch {Epoch}/{Epochs} step {Step}: {Examples} rows, loss {Loss:F4}, accuracy {Accuracy:P2}, " +
        $"{ExamplesPerSecond:F0} rows/s, {Elapsed:hh\\:mm\\:ss}";
}
