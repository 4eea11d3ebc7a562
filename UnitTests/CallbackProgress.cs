using MLNetQuant.Training;

namespace MLNetQuant.UnitTests;

/// <summary>Reports progress on the calling thread (System.Progress posts to the thread pool, too late to act on).</summary>
internal sealed class CallbackProgress(Action<QuantizationProgress> report) : IProgress<QuantizationProgress>
{
    public void Report(QuantizationProgress value) => report(value);
}
