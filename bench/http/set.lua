-- wrk script: PUT a route for one of 10,000 Telegram chats per request.
counter = 0
request = function()
  counter = counter + 1
  return wrk.format("PUT", "/v1/instances/default/routes/telegram:bot_1:chat_" .. (counter % 10000),
    {["Content-Type"] = "application/json"}, '{"route":{"external_room_id":"-100123"}}')
end
