namespace MLNetQuant.OnnxPtq;

/// <summary>The sensitivity measure of the tolerance search and the mixed-precision choice: a candidate model's score
/// output against the float model's on the same rows, as relative squared error Σ(y − ŷ)² / Σy².</summary>
internal sealed class OutputError
{
    private readonly float[] _reference;
    private readonly double _energy;
    private readonly Func<QuantizedModel, float[]> _outputs;

    public OutputError(QuantizedModel floatModel, Func<QuantizedModel, float[]> outputs)
    {
        _outputs = outputs;
        _reference = outputs(floatModel);
        _energy = _reference.Sum(v => (double)v * v) + 1e-30;
    }

    /// <summary>The relative squared error of <paramref name="model"/>'s output.</summary>
    public double Of(QuantizedModel model)
    {
        var y = _outputs(model);
        double noise = 0;
        for (var i = 0; i < y.Length; i++) noise += (double)(y[i] - _reference[i]) * (y[i] - _reference[i]);
        return noise / _energy;
    }
}
