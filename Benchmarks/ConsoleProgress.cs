using MLNetQuant.Training;

namespace MLNetQuant.Benchmarks;

/// <summary>Prints progress reports as they come (synchronously, unlike Progress&lt;T&gt;, which posts to the pool).</summary>
internal sealed class ConsoleProgress : IProgress<QuantizationProgress>
{
    public void Report(QuantizationProgress value) => Console.WriteLine($"   {value}");
}
