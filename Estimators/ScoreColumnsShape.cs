using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNetQuant;

/// <summary>The output columns a <see cref="QuantizedModelTransformer"/> will add, as a <see cref="SchemaShape"/>
/// before Fit. The shapes come from the real thing: the classification stage's output schema over a stand-in input
/// schema with the same types, read back with ML.NET's own SchemaShape.Create — internal to ML.NET, like
/// SchemaShape.Column's constructors, hence reflection (see <see cref="PredictedLabelStage"/> for the same choice).</summary>
internal static class ScoreColumnsShape
{
    /// <summary><paramref name="input"/> with Score (a Single vector of <paramref name="classes"/>) and, when
    /// <paramref name="predictedLabelColumn"/> is set, the key-typed predicted label, replacing same-named columns.</summary>
    public static SchemaShape Append(MLContext ml, SchemaShape input, string scoreColumn, int classes,
        string? predictedLabelColumn, SchemaShape.Column? label) =>
        Append(ml, input, new[] { (scoreColumn, (DataViewType)new VectorDataViewType(NumberDataViewType.Single, classes)) }, classes,
            predictedLabelColumn, label);

    /// <summary><paramref name="input"/> with the given output columns (the first is the score) and, when
    /// <paramref name="predictedLabelColumn"/> is set, the key-typed predicted label over <paramref name="classes"/>
    /// classes, replacing same-named columns.</summary>
    public static SchemaShape Append(MLContext ml, SchemaShape input, IReadOnlyList<(string Name, DataViewType Type)> outputs, int classes,
        string? predictedLabelColumn, SchemaShape.Column? label)
    {
        var scoreColumn = outputs[0].Name;
        var builder = new DataViewSchema.Builder();
        foreach (var (name, type) in outputs) builder.AddColumn(name, type);
        var standIn = predictedLabelColumn is not null && label is { } shape && shape.Name != scoreColumn ? shape.Name : null;
        if (standIn is not null) AddStandIn(builder, label!.Value, classes);
        var scored = builder.ToSchema();
        var output = predictedLabelColumn is null ? scored
            : PredictedLabelStage.Create(ml, scored, scoreColumn, predictedLabelColumn, standIn is null ? null : scored[standIn])
                .GetOutputSchema(scored);
        var added = outputs.Select(o => o.Name).ToHashSet(StringComparer.Ordinal);
        if (predictedLabelColumn is not null) added.Add(predictedLabelColumn);
        var addedColumns = ShapeOf(output).Where(c => added.Contains(c.Name));
        return new SchemaShape(input.Where(c => !added.Contains(c.Name)).Concat(addedColumns));
    }

    // A label column of the shape's type; a key label gets key values of its annotation's item type.
    private static void AddStandIn(DataViewSchema.Builder builder, SchemaShape.Column label, int classes)
    {
        if (!label.IsKey)
        {
            builder.AddColumn(label.Name, label.ItemType);
            return;
        }
        var annotations = new DataViewSchema.Annotations.Builder();
        if (label.Annotations.FirstOrDefault(c => c.Name == "KeyValues") is { Name: not null } keyValues)
            typeof(ScoreColumnsShape).GetMethod(nameof(AddDefaultKeyValues), BindingFlags.NonPublic | BindingFlags.Static)!
                .MakeGenericMethod(keyValues.ItemType.RawType).Invoke(null, new object[] { annotations, keyValues.ItemType, classes });
        builder.AddColumn(label.Name, new KeyDataViewType(typeof(uint), classes), annotations.ToAnnotations());
    }

    private static SchemaShape ShapeOf(DataViewSchema schema)
    {
        var create = typeof(SchemaShape).GetMethod("Create", BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic, new[] { typeof(DataViewSchema) })
            ?? throw new InvalidOperationException("This Microsoft.ML version has no SchemaShape.Create(DataViewSchema), which MLNetQuant uses " +
                "to describe its output columns; use the Microsoft.ML version MLNetQuant was built with.");
        return (SchemaShape)create.Invoke(null, new object[] { schema })!;
    }

    private static void AddDefaultKeyValues<T>(DataViewSchema.Annotations.Builder annotations, DataViewType itemType, int classes)
    {
        var values = new VBuffer<T>(classes, new T[classes]);
        annotations.Add("KeyValues", new VectorDataViewType((PrimitiveDataViewType)itemType, classes), (ref VBuffer<T> dst) => values.CopyTo(ref dst));
    }
}
