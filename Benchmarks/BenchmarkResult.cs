namespace MLNetQuant.Benchmarks;

/// <summary>One benchmark run, as written to Benchmarks/results/*.json.</summary>
internal sealed record BenchmarkResult(
    string Name,
    string Algorithm,
    string Bits,
    double Accuracy,
    string Baseline,
    double BaselineAccuracy,
    double Target,
    bool Met,
    double SecondsPerEpoch,
    int Epochs,
    string Command,
    string Notes);
