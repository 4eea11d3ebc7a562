using System.Reflection;
using System.Runtime.ExceptionServices;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;
using Microsoft.ML.Trainers;

namespace MLNetQuant;

/// <summary>Adds ML.NET's classification outputs — a key-typed <c>PredictedLabel</c> and a <c>Score</c> with slot
/// names — after the ONNX scores, with ML.NET's own multiclass scorer, so that the saved .zip still loads with
/// Microsoft.ML alone and <c>MapKeyToValue</c> and <c>MulticlassClassification.Evaluate</c> work as after any
/// ML.NET trainer.</summary>
/// <remarks>
/// Why this way: ML.NET's OnnxTransformer surfaces every ONNX output as a vector (a rank-0 output gets a scalar
/// schema type whose getter then fails), and no public ML.NET transform turns a one-slot vector into a scalar key;
/// the only loadable ML.NET components that emit a scalar key are the prediction transformers. So the stage is a
/// <see cref="MulticlassPredictionTransformer{TModel}"/> over an identity <see cref="LinearMulticlassModelParameters"/>
/// (class k's weight vector is the unit vector e_k, bias 0, no calibration): its Score is the ONNX Score bit for bit
/// (one product by 1 and additions of exact zeros) and its PredictedLabel is the arg-max + 1 with the label's key
/// values. Both constructors are internal to ML.NET (its trainers are their only callers), so they are reached by
/// reflection against the pinned Microsoft.ML version; <see cref="Create"/> fails with a clear message if a future
/// version changes them, and the unit tests exercise it on every build.
/// </remarks>
internal static class PredictedLabelStage
{
    // ML.NET's annotation kind for a key column's values (AnnotationUtils.Kinds is internal).
    private const string KeyValuesKind = "KeyValues";

    // The name the label takes in the stage's training schema when the data has none (weight-only Naive).
    private const string SyntheticLabelName = "Label";

    /// <summary>The stage, for data of schema <paramref name="scoredSchema"/> (the input plus the ONNX outputs).</summary>
    /// <param name="ml">The context.</param>
    /// <param name="scoredSchema">A schema holding <paramref name="scoreColumn"/>, a known-size Single vector of the
    /// class count.</param>
    /// <param name="scoreColumn">The class-probability column; the stage's Score replaces it under the same name.</param>
    /// <param name="predictedLabelColumn">The key column to add.</param>
    /// <param name="label">The training label column: its key values (a key label with as many values as classes)
    /// name the predicted keys; otherwise the keys' values are the class indices 0…K-1 in the label's type (UInt32
    /// when there is no label or it is not an integer).</param>
    public static ITransformer Create(MLContext ml, DataViewSchema scoredSchema, string scoreColumn,
        string predictedLabelColumn, DataViewSchema.Column? label)
    {
        var scoreType = scoredSchema[scoreColumn].Type as VectorDataViewType;
        if (scoreType is null || scoreType.ItemType != NumberDataViewType.Single || !scoreType.IsKnownSize || scoreType.Size < 2)
            throw new ArgumentException($"Score column '{scoreColumn}' must be a known-size Single vector of at least two classes, not {scoredSchema[scoreColumn].Type}.", nameof(scoreColumn));
        var classes = scoreType.Size;
        var labelName = label?.Name ?? SyntheticLabelName;
        var trainSchema = TrainSchema(scoredSchema[scoreColumn], labelName, classes, label);

        var weights = new VBuffer<float>[classes];
        for (var k = 0; k < classes; k++) weights[k] = new VBuffer<float>(classes, 1, new[] { 1f }, new[] { k });
        var env = (IHostEnvironment)ml;
        var model = (LinearMulticlassModelParameters)Construct(typeof(LinearMulticlassModelParameters),
            new object?[] { env, weights, new float[classes], classes, classes, null, null },
            typeof(IHostEnvironment), typeof(VBuffer<float>[]), typeof(float[]), typeof(int), typeof(int), typeof(string[]), typeof(ModelStatisticsBase));
        return (ITransformer)Construct(typeof(MulticlassPredictionTransformer<LinearMulticlassModelParameters>),
            new object?[] { env, model, trainSchema, scoreColumn, labelName, scoreColumn, predictedLabelColumn },
            typeof(IHostEnvironment), typeof(LinearMulticlassModelParameters), typeof(DataViewSchema), typeof(string), typeof(string), typeof(string), typeof(string));
    }

    // The schema the scorer is "trained" on: the score column, and a key label whose values name the classes.
    private static DataViewSchema TrainSchema(DataViewSchema.Column score, string labelName, int classes, DataViewSchema.Column? label)
    {
        var annotations = new DataViewSchema.Annotations.Builder();
        var labelType = label?.Type;
        if (labelType is KeyDataViewType key && key.Count == (ulong)classes
            && label!.Value.Annotations.Schema.GetColumnOrNull(KeyValuesKind) is { Type: VectorDataViewType { Size: var size } } && size == classes)
            annotations.Add(label.Value.Annotations, kind => kind == KeyValuesKind);
        else if (labelType == NumberDataViewType.Int32)
            AddClassIndices(annotations, NumberDataViewType.Int32, classes, k => k);
        else
            AddClassIndices(annotations, NumberDataViewType.UInt32, classes, k => (uint)k);
        var builder = new DataViewSchema.Builder();
        builder.AddColumn(score.Name, score.Type);
        builder.AddColumn(labelName, new KeyDataViewType(typeof(uint), classes), annotations.ToAnnotations());
        return builder.ToSchema();
    }

    private static void AddClassIndices<T>(DataViewSchema.Annotations.Builder annotations, PrimitiveDataViewType type, int classes, Func<int, T> value)
    {
        var values = new VBuffer<T>(classes, Enumerable.Range(0, classes).Select(value).ToArray());
        annotations.Add(KeyValuesKind, new VectorDataViewType(type, classes), (ref VBuffer<T> dst) => values.CopyTo(ref dst));
    }

    private static object Construct(Type type, object?[] arguments, params Type[] parameterTypes)
    {
        var constructor = type.GetConstructor(BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public, parameterTypes)
            ?? throw new InvalidOperationException($"This Microsoft.ML version has no {type.Name}({string.Join(", ", parameterTypes.Select(t => t.Name))}) " +
                "constructor, which MLNetQuant uses to add the PredictedLabel column; use the Microsoft.ML version MLNetQuant was built with.");
        try
        {
            return constructor.Invoke(arguments);
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            ExceptionDispatchInfo.Capture(e.InnerException).Throw();
            throw;
        }
    }
}
