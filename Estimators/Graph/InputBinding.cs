using Microsoft.ML;
using Microsoft.ML.Data;
using Onnx;

namespace MLNetQuant.Graph;

/// <summary>One graph input and the IDataView column that feeds it: the column's name, the element type the model
/// wants, and the per-row dimensions (everything after the batch dimension), resolved from the model's fixed
/// dimensions, an explicit shape option, or the column's own vector dimensions.</summary>
/// <param name="GraphInput">The graph input's name.</param>
/// <param name="Column">The column feeding it.</param>
/// <param name="ElementType">The ONNX element type (onnx.proto's TensorProto.DataType).</param>
/// <param name="RowDims">Dimensions of one row; symbolic ones resolved.</param>
internal sealed record InputBinding(string GraphInput, string Column, int ElementType, long[] RowDims)
{
    /// <summary>Values per row.</summary>
    public long RowSize => RowDims.Aggregate(1L, (a, b) => a * b);

    /// <summary>The ML.NET item type of the column for an ONNX element type, or null when not supported.</summary>
    public static PrimitiveDataViewType? ItemTypeOf(int elementType) => elementType switch
    {
        OnnxTensors.Float => NumberDataViewType.Single,
        OnnxTensors.Double => NumberDataViewType.Double,
        OnnxTensors.Int64 => NumberDataViewType.Int64,
        OnnxTensors.Int32 => NumberDataViewType.Int32,
        OnnxTensors.Bool => BooleanDataViewType.Instance,
        _ => null,
    };

    /// <summary>The graph inputs of <paramref name="model"/> (initializers excluded).</summary>
    public static List<ValueInfoProto> GraphInputs(ModelProto model)
    {
        var initializers = model.Graph.Initializer.Select(t => t.Name).ToHashSet(StringComparer.Ordinal);
        return model.Graph.Input.Where(i => !initializers.Contains(i.Name)).ToList();
    }

    /// <summary>The column each graph input reads: the mapping's entry; else, for a one-input model,
    /// <paramref name="singleInputColumn"/>; else the input's own name.</summary>
    public static string ColumnFor(ModelProto model, string graphInput, IDictionary<string, string> mapping, string singleInputColumn) =>
        mapping.TryGetValue(graphInput, out var column) ? column : GraphInputs(model).Count == 1 ? singleInputColumn : graphInput;

    /// <summary>Each graph input, the column feeding it (<see cref="ColumnFor"/>) and the item type that column must hold.</summary>
    /// <exception cref="NotSupportedException">An input that is not a tensor of a supported element type.</exception>
    public static IEnumerable<(string GraphInput, string Column, PrimitiveDataViewType ItemType)> Columns(ModelProto model,
        IDictionary<string, string> mapping, string singleInputColumn) =>
        GraphInputs(model).Select(i => (i.Name, ColumnFor(model, i.Name, mapping, singleInputColumn), Describe(i).ItemType));

    /// <summary>Binds every graph input to its column of <paramref name="schema"/>.</summary>
    /// <exception cref="ArgumentException">A missing column, a column of the wrong type or size, or a symbolic
    /// dimension nothing resolves — naming the column, the input and the option that would fix it.</exception>
    public static List<InputBinding> Resolve(ModelProto model, DataViewSchema schema, IDictionary<string, string> mapping,
        string singleInputColumn, IDictionary<string, long[]> shapes)
    {
        var bindings = new List<InputBinding>();
        foreach (var input in GraphInputs(model))
        {
            var columnName = ColumnFor(model, input.Name, mapping, singleInputColumn);
            var (elementType, itemType, modelDims) = Describe(input);
            var column = schema.GetColumnOrNull(columnName) ?? throw new ArgumentException(
                $"The data has no column '{columnName}' for the model input '{input.Name}' (map it with InputColumns).");
            var (columnItem, columnSize, columnDims) = column.Type is VectorDataViewType vector
                ? (vector.ItemType, vector.Size, vector.Dimensions.Select(d => (long)d).ToArray())
                : (column.Type, 1, Array.Empty<long>());
            if (columnItem != itemType)
                throw new ArgumentException($"Column '{columnName}' holds {columnItem}; the model input '{input.Name}' takes {itemType}.");
            if (columnSize == 0)
                throw new ArgumentException($"Column '{columnName}' is a vector of variable size; the model input '{input.Name}' needs a known size " +
                    "per row (pad or resize the rows to one size, e.g. with ResizeImages or a fixed token count).");
            var rowDims = ResolveRowDims(input.Name, columnName, modelDims, columnSize, columnDims, shapes);
            var size = rowDims.Aggregate(1L, (a, b) => a * b);
            if (size != columnSize)
                throw new ArgumentException($"Column '{columnName}' has {columnSize} values per row; the model input '{input.Name}' " +
                    $"of shape [batch, {string.Join(", ", rowDims)}] needs {size}.");
            bindings.Add(new InputBinding(input.Name, columnName, elementType, rowDims));
        }
        if (bindings.Select(b => b.Column).Distinct().Count() != bindings.Count)
            throw new ArgumentException("Two model inputs read the same column; map each to its own with InputColumns.");
        return bindings;
    }

    /// <summary>Binds every graph input without data (a run that reads none, or a schema check): the column from the
    /// mapping or the input's name, the per-row shape from <paramref name="shapes"/> or the model's fixed dimensions.</summary>
    /// <exception cref="ArgumentException">A symbolic dimension that neither resolves, naming the input and InputShapes.</exception>
    public static List<InputBinding> FromModel(ModelProto model, IDictionary<string, string> mapping, string singleInputColumn,
        IDictionary<string, long[]> shapes) => GraphInputs(model).Select(input =>
        {
            var (elementType, _, modelDims) = Describe(input);
            var rowDims = shapes.TryGetValue(input.Name, out var given) ? given : modelDims;
            if (rowDims.Length != modelDims.Length || rowDims.Any(d => d <= 0))
                throw new ArgumentException($"The model input '{input.Name}' has per-row shape [{string.Join(", ", modelDims.Select(d => d > 0 ? d.ToString() : "?"))}]; " +
                    $"without data to read it from, set InputShapes['{input.Name}'] to its positive dimensions.");
            return new InputBinding(input.Name, ColumnFor(model, input.Name, mapping, singleInputColumn), elementType, rowDims);
        }).ToList();

    /// <summary>Names each graph input fed by a column of another name after that column (ML.NET binds inputs by name)
    /// and records the renaming in <paramref name="names"/> for the Q/DQ rewrite.</summary>
    /// <exception cref="NotSupportedException">The model already has a tensor of the column's name.</exception>
    public static void RenameToColumns(ModelProto model, Onnx.OnnxGraphBuilder onnx, IEnumerable<InputBinding> bindings, Dictionary<string, string> names)
    {
        foreach (var binding in bindings.Where(b => b.GraphInput != b.Column))
        {
            if (onnx.Unique(binding.Column) != binding.Column)
                throw new NotSupportedException($"Column '{binding.Column}' feeds model input '{binding.GraphInput}', but the model already has " +
                    $"a tensor named '{binding.Column}'; map the input to another column name (InputColumns).");
            model.Graph.Input.Single(i => i.Name == binding.GraphInput).Name = binding.Column;
            names[binding.GraphInput] = binding.Column;
        }
    }

    /// <summary>The shape ML.NET must feed ([1, row dims…]), by column, for each input of <paramref name="model"/> (as
    /// the bindings name it) with a symbolic dimension besides the batch; ML.NET cannot infer those.</summary>
    public static Dictionary<string, int[]> MlNetShapes(ModelProto model, IEnumerable<InputBinding> bindings) => bindings
        .Where(b => model.Graph.Input.Single(i => i.Name == b.GraphInput).Type.TensorType.Shape?.Dim.Skip(1).Any(d => d.DimValue <= 0) ?? true)
        .ToDictionary(b => b.Column, b => new[] { 1 }.Concat(b.RowDims.Select(d => checked((int)d))).ToArray());

    // A graph input's element type, ML.NET item type and per-row dimensions (−1 where symbolic).
    private static (int ElementType, PrimitiveDataViewType ItemType, long[] ModelDims) Describe(ValueInfoProto input)
    {
        var tensorType = input.Type?.TensorType ?? throw new NotSupportedException($"Model input '{input.Name}' is not a tensor.");
        var itemType = ItemTypeOf(tensorType.ElemType) ?? throw new NotSupportedException(
            $"Model input '{input.Name}' has ONNX element type {tensorType.ElemType}; float, double, int64, int32 and bool inputs are supported.");
        var modelDims = tensorType.Shape?.Dim.Skip(1).Select(d => d.DimValue > 0 ? d.DimValue : -1).ToArray() ?? Array.Empty<long>();
        return (tensorType.ElemType, itemType, modelDims);
    }

    private static long[] ResolveRowDims(string input, string column, long[] modelDims, int columnSize, long[] columnDims, IDictionary<string, long[]> shapes)
    {
        if (shapes.TryGetValue(input, out var given))
        {
            if (given.Length != modelDims.Length || given.Zip(modelDims).Any(p => p.First <= 0 || (p.Second > 0 && p.First != p.Second)))
                throw new ArgumentException($"InputShapes['{input}'] = [{string.Join(", ", given)}] does not fit the model input's per-row shape " +
                    $"[{string.Join(", ", modelDims.Select(d => d > 0 ? d.ToString() : "?"))}].");
            return given;
        }
        if (modelDims.All(d => d > 0)) return modelDims;
        if (columnDims.Length == modelDims.Length && columnDims.Zip(modelDims).All(p => p.Second <= 0 || p.First == p.Second))
            return columnDims;
        var known = modelDims.Where(d => d > 0).Aggregate(1L, (a, b) => a * b);
        if (modelDims.Count(d => d <= 0) == 1 && columnSize % known == 0)
            return modelDims.Select(d => d > 0 ? d : columnSize / known).ToArray();
        throw new ArgumentException($"The model input '{input}' has per-row shape [{string.Join(", ", modelDims.Select(d => d > 0 ? d.ToString() : "?"))}] " +
            $"with more than one symbolic dimension, and column '{column}' does not say its shape: set InputShapes['{input}'] or give the column " +
            "a VectorDataViewType with those dimensions.");
    }
}
