using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNetQuant.OnnxPtq;

/// <summary>The validation metric an accuracy-tolerance search keeps within tolerance: one of ML.NET's evaluators or a
/// function of the scored validation data.</summary>
public sealed class QuantizationMetric
{
    private readonly Func<MLContext, IDataView, double> _compute;

    private QuantizationMetric(string name, bool higherIsBetter, bool needsPredictedLabel, Func<MLContext, IDataView, double> compute)
    {
        Name = name;
        HigherIsBetter = higherIsBetter;
        NeedsPredictedLabel = needsPredictedLabel;
        _compute = compute;
    }

    /// <summary>What the metric is called in the report and the log.</summary>
    public string Name { get; }

    /// <summary>Whether larger values are better.</summary>
    public bool HigherIsBetter { get; }

    /// <summary>Whether the estimator must add a predicted-label column (PredictedLabelColumnName) for it.</summary>
    internal bool NeedsPredictedLabel { get; }

    /// <summary>ML.NET's multiclass evaluator's micro-accuracy (share of rows classified right, 0–1). The options must
    /// set <see cref="OnnxModelOptions.PredictedLabelColumnName"/> and <see cref="OnnxModelOptions.LabelColumnName"/>
    /// (a key column, as ML.NET's evaluators need), and the model's first output must be the per-class scores.</summary>
    public static QuantizationMetric MulticlassAccuracy(string labelColumnName = "Label", string scoreColumnName = "Score",
        string predictedLabelColumnName = "PredictedLabel") =>
        new("MicroAccuracy", higherIsBetter: true, needsPredictedLabel: true, (ml, scored) =>
            ml.MulticlassClassification.Evaluate(scored, labelColumnName, scoreColumnName, predictedLabelColumnName).MicroAccuracy);

    /// <summary>Root mean squared error of a regressor, as ML.NET's regression evaluator computes it, over a score
    /// column of one value per row (the ONNX output [batch, 1] arrives as a 1-slot vector, which ML.NET's evaluator does
    /// not take) against a Single label column.</summary>
    public static QuantizationMetric RegressionRmse(string labelColumnName = "Label", string scoreColumnName = "Score") =>
        new("RMSE", higherIsBetter: false, needsPredictedLabel: false, (_, scored) => Rmse(scored, labelColumnName, scoreColumnName));

    /// <summary>Any metric of the scored validation data (the transformer's output over it).</summary>
    /// <param name="name">What to call it.</param>
    /// <param name="higherIsBetter">Whether larger values are better.</param>
    /// <param name="compute">Computes it from the scored data.</param>
    public static QuantizationMetric Custom(string name, bool higherIsBetter, Func<IDataView, double> compute)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(name);
        ArgumentNullException.ThrowIfNull(compute);
        return new QuantizationMetric(name, higherIsBetter, needsPredictedLabel: false, (_, scored) => compute(scored));
    }

    /// <summary>The metric of <paramref name="scored"/>; a NaN or infinite value is an error naming the metric.</summary>
    internal double Compute(MLContext ml, IDataView scored)
    {
        var value = _compute(ml, scored);
        if (!double.IsFinite(value)) throw new InvalidOperationException($"The validation metric '{Name}' is {value}; the search cannot compare models by it.");
        return value;
    }

    private static double Rmse(IDataView scored, string label, string score)
    {
        var labelColumn = scored.Schema.GetColumnOrNull(label) ?? throw new ArgumentException($"The validation data has no label column '{label}'.");
        var scoreColumn = scored.Schema.GetColumnOrNull(score) ?? throw new ArgumentException($"The scored data has no column '{score}'.");
        if (labelColumn.Type != NumberDataViewType.Single) throw new ArgumentException($"Label column '{label}' must be Single for RMSE; it is {labelColumn.Type}.");
        using var cursor = scored.GetRowCursor(new[] { labelColumn, scoreColumn });
        var getLabel = cursor.GetGetter<float>(labelColumn);
        ValueGetter<VBuffer<float>>? getVector = scoreColumn.Type is VectorDataViewType ? cursor.GetGetter<VBuffer<float>>(scoreColumn) : null;
        ValueGetter<float>? getScalar = getVector is null ? cursor.GetGetter<float>(scoreColumn) : null;
        float y = 0, s = 0;
        var vector = default(VBuffer<float>);
        double sum = 0;
        long rows = 0;
        while (cursor.MoveNext())
        {
            getLabel(ref y);
            if (getVector is not null)
            {
                getVector(ref vector);
                if (vector.Length != 1) throw new ArgumentException($"RMSE needs one score per row; column '{score}' holds {vector.Length}.");
                s = vector.GetItemOrDefault(0);
            }
            else getScalar!(ref s);
            sum += (double)(s - y) * (s - y);
            rows++;
        }
        return rows == 0 ? double.NaN : Math.Sqrt(sum / rows);
    }
}
