namespace MLNetQuant.Training;

/// <summary>Loss and accuracy of a network over a data view.</summary>
/// <param name="Loss">Mean cross-entropy (classification) or mean squared error (regression).</param>
/// <param name="Accuracy">Fraction of rows whose arg-max output is the label (NaN for regression).</param>
/// <param name="Rows">Rows evaluated.</param>
public sealed record EvaluationMetrics(double Loss, double Accuracy, long Rows);
