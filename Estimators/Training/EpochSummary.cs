namespace MLNetQuant.Training;

/// <summary>What one training epoch achieved.</summary>
/// <param name="Epoch">1-based epoch.</param>
/// <param name="TrainLoss">Mean training loss over the epoch.</param>
/// <param name="TrainAccuracy">Training accuracy over the epoch (as the network was while it trained).</param>
/// <param name="Seconds">Wall time of the epoch's training pass (validation excluded).</param>
/// <param name="Validation">Metrics on the validation data, when given.</param>
public sealed record EpochSummary(int Epoch, double TrainLoss, double TrainAccuracy, double Seconds, EvaluationMetrics? Validation);
