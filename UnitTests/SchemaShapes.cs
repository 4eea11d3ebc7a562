using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNetQuant.UnitTests;

/// <summary>What ML.NET's pipelines pass to GetOutputSchema: SchemaShape.Create, internal to ML.NET.</summary>
internal static class SchemaShapes
{
    public static SchemaShape Of(DataViewSchema schema) => (SchemaShape)typeof(SchemaShape)
        .GetMethod("Create", BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic, new[] { typeof(DataViewSchema) })!
        .Invoke(null, new object[] { schema })!;
}
