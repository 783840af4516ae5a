import mysql.connector

mydb = mysql.connector.connect(
    host="mysql",
    user="test",
    password="test",
    database="test",
)

print(mydb)

# Continue at
# https://www.w3schools.com/python/python_mysql_create_table.asp
# or
# https://realpython.com/python-mysql/
