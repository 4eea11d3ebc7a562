using Microsoft.ML;
using MLNetQuant.Graph;
using static TorchSharp.torch;

namespace MLNetQuant.Training;

/// <summary>How examples reach a model that trains or calibrates: each input, the column feeding it, its element type
/// and the shape of one row. A TorchSharp model, or an ONNX model with one float input, reads one float features column
/// reshaped to <see cref="QuantizationOptions.InputShape"/> (<see cref="IsFlat"/>); an ONNX model with several inputs
/// or a non-float one reads one column per graph input — the column of the input's name or its
/// <see cref="QuantizationOptions.InputColumns"/> entry, of the element type the model wants (float, double, int64,
/// int32, bool), shaped by the model's fixed dimensions, the column's own vector dimensions or
/// <see cref="QuantizationOptions.InputShapes"/>.</summary>
internal sealed class ModelInputs
{
    private ModelInputs(IReadOnlyList<InputBinding> bindings, bool flat)
    {
        Bindings = bindings;
        IsFlat = flat;
    }

    /// <summary>The inputs in the model's order.</summary>
    public IReadOnlyList<InputBinding> Bindings { get; }

    /// <summary>True: one float features column, a flat vector per row reshaped to the input shape (the exported model
    /// reads it that way too); false: the graph's own inputs, each from its column.</summary>
    public bool IsFlat { get; }

    /// <summary>The inputs of <paramref name="options"/>' model, bound to <paramref name="schema"/>'s columns (or, with
    /// no data, to the columns they will read).</summary>
    /// <exception cref="ArgumentException">A missing column, one of the wrong type or size, or a shape nothing gives.</exception>
    public static ModelInputs For(QuantizationOptions options, DataViewSchema? schema)
    {
        if (options.ImportedModel is { } model && options.ReadsGraphInputs)
            return new ModelInputs(schema is null
                ? InputBinding.FromModel(model, options.InputColumns, options.FeatureColumnName, options.InputShapes)
                : InputBinding.Resolve(model, schema, options.InputColumns, options.FeatureColumnName, options.InputShapes), flat: false);
        return Flat(options.FeatureColumnName, options.InputShape);
    }

    /// <summary>One float features column, each row a flat vector reshaped to <paramref name="inputShape"/>.</summary>
    public static ModelInputs Flat(string featureColumn, long[] inputShape) =>
        new(new[] { new InputBinding("input", featureColumn, OnnxTensors.Float, inputShape) }, flat: true);

    /// <summary>One example of zeros per input (int64 zeros are valid token ids), on <paramref name="device"/>.</summary>
    public Tensor[] Example(Device device) => Bindings.Select(b =>
        zeros(new[] { 1L }.Concat(b.RowDims).ToArray(), dtype: OnnxToTorch.ScalarType(b.ElementType, $"Model input '{b.GraphInput}'"), device: device)).ToArray();

    /// <summary>"shape [1, 28, 28] (InputShape)" or "inputs input_ids [1, 16] (Int64), attention_mask [1, 16] (Int64)": for messages.</summary>
    public string Describe() => IsFlat ? $"shape [1, {string.Join(", ", Bindings[0].RowDims)}] (InputShape)"
        : "inputs " + string.Join(", ", Bindings.Select(b => $"{b.GraphInput} [1, {string.Join(", ", b.RowDims)}] ({OnnxToTorch.ScalarType(b.ElementType, b.GraphInput)})"));
}
